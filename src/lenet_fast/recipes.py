# lenet_fast.recipes, public: the tuned training recipes. Its text is that of the module
# that holds the code, handed on with its names.
from ._training.recipes import (  # noqa: F401
    __doc__, TRAIN_DEFAULTS, AUGMENT_DEFAULT, RECIPES, NAMED_RECIPES, SDLM_RECIPE, SDLM_INIT,
    OPTIMIZER_NEUTRAL, OPTIMIZER_HPARAMS, HPARAM_SETTINGS, LATER_SETTINGS,
    drop_later_settings, schedule_options, optimizer_options, make_optimizer, default_out,
    named_recipe, train_settings,
)

__all__ = [
    "TRAIN_DEFAULTS", "AUGMENT_DEFAULT", "RECIPES", "NAMED_RECIPES", "SDLM_RECIPE",
    "SDLM_INIT", "OPTIMIZER_NEUTRAL", "OPTIMIZER_HPARAMS", "HPARAM_SETTINGS",
    "LATER_SETTINGS", "drop_later_settings", "schedule_options", "optimizer_options",
    "make_optimizer", "default_out", "named_recipe", "train_settings",
]
