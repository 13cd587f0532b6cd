# lenet_fast.schedules, public: learning-rate schedules. Its text is that of the module
# that holds the code, handed on with its names.
from ._training.schedules import (  # noqa: F401
    __doc__, LRSchedule, ConstantLR, StepLR, CosineLR, OneCycleLR, LeCunSDLMSchedule,
    SCHEDULES, make_schedule, schedule_from_config,
)

__all__ = [
    "LRSchedule", "ConstantLR", "StepLR", "CosineLR", "OneCycleLR", "LeCunSDLMSchedule",
    "SCHEDULES", "make_schedule", "schedule_from_config",
]
