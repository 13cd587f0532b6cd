"""Learning-rate schedules.

The module's documentation is that of the code it hands on (below).
"""

from ._training import schedules as _home
from ._training.schedules import (  # noqa: F401
    LRSchedule, ConstantLR, StepLR, CosineLR, OneCycleLR, LeCunSDLMSchedule, SCHEDULES,
    make_schedule, schedule_from_config,
)

__doc__ = _home.__doc__
__all__ = [
    "LRSchedule", "ConstantLR", "StepLR", "CosineLR", "OneCycleLR", "LeCunSDLMSchedule",
    "SCHEDULES", "make_schedule", "schedule_from_config",
]
