# lenet_fast.recipes, public: the tuned training recipes. Its text is that of the module
# that holds the code, handed on with its names.
from ._training.recipes import (  # noqa: F401
    __doc__, TRAIN_DEFAULTS, AUGMENT_DEFAULT, RECIPES, SDLM_RECIPE, SDLM_INIT,
    OPTIMIZER_NEUTRAL, optimizer_options, make_optimizer, default_out, train_settings,
)

__all__ = [
    "TRAIN_DEFAULTS", "AUGMENT_DEFAULT", "RECIPES", "SDLM_RECIPE", "SDLM_INIT",
    "OPTIMIZER_NEUTRAL", "optimizer_options", "make_optimizer", "default_out",
    "train_settings",
]
