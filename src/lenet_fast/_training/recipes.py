"""Training recipes: the settings `lenet-fast train` uses where the command line is silent.

One home for them and for how a run's settings are resolved (`train_settings`), read by
the CLI (`lenet_fast.cli`), experiments and sweeps (`lenet_fast.experiment`), the
scikit-learn estimator, the time-to-accuracy benchmark (`lenet_fast.bench.time_to_accuracy`)
and whoever wants to train "the default way" from Python (the user guide's "Training
and the recipes" shows how: a `LeNet5` and a `Trainer` from ``RECIPES[variant]`` and
`make_optimizer`).

modern: two epochs to >= 99.0% test accuracy in seconds. Each of its settings gained
accuracy at two epochs in measured runs (the documentation's Results page): a dense C3 (LeCun's sparse
table ends some seeds just below 99.0%), Nesterov momentum, weight decay 5e-4 and label
smoothing 0.1, on a one-cycle schedule peaking at 0.08. ``--epochs 8`` is the long
recipe. lecun98: Adam with a cosine schedule; the paper's own optimizer is SDLM
(`SDLM_RECIPE`).
"""

from .optim.registry import make_optimizer as _make_optimizer

#: Defaults of ``lenet-fast train``, in one place. None means the variant's recipe
#: (`RECIPES`), except ``lr`` with another optimizer than the recipe's (that optimizer's own
#: default: `lenet_fast.optim.make_optimizer`), ``threads`` (the OpenMP default:
#: OMP_NUM_THREADS, else the usable cores) and ``out`` (``lenet5-<variant>.npz`` in the
#: current directory). With ``--resume``, options not given on the command line come from
#: the checkpoint instead.
TRAIN_DEFAULTS = {
    "variant": "modern",
    "c3": None,
    "init": "auto",
    "epochs": None,
    "batch_size": None,
    "optimizer": None,
    "lr": None,
    "schedule": None,
    "weight_decay": None,
    "nesterov": None,
    "label_smoothing": None,
    "threads": None,
    "seed": 0,
    "out": None,
}

#: Default of ``lenet-fast train --augment`` (kept apart from TRAIN_DEFAULTS, whose
#: keys are the network/optimizer recipe): no distortions.
AUGMENT_DEFAULT = "none"

#: Each variant's recipe, for the settings TRAIN_DEFAULTS leaves None.
RECIPES = {
    "modern": {"c3": "full", "epochs": 2, "batch_size": 64, "optimizer": "sgd", "lr": 0.08,
               "schedule": "onecycle", "weight_decay": 5e-4, "nesterov": True,
               "label_smoothing": 0.1},
    "lecun98": {"c3": "lecun", "epochs": 10, "batch_size": 32, "optimizer": "adam", "lr": 0.002,
                "schedule": "cosine", "weight_decay": 0.0, "nesterov": False,
                "label_smoothing": 0.0},
}

#: With --optimizer sdlm: the paper's recipe (LeCun et al. 1998, section III-A and
#: appendix C): 20 passes at batch 1 on the paper's schedule, with its rates scaled by
#: 0.4 (eta = 0.0002 for passes 1-2, ...; `lenet_fast.optim` has the measurements) ...
SDLM_RECIPE = {"epochs": 20, "batch_size": 1, "lr": 0.0002, "schedule": "lecun98"}
#: ... from weights uniform in +-2.4/sqrt(fan-in) (`lenet_fast.model`).
SDLM_INIT = "fanin-sqrt"

#: Recipe settings that belong to one optimizer: another optimizer gets these instead.
OPTIMIZER_NEUTRAL = {"weight_decay": 0.0, "nesterov": False}


def optimizer_options(settings):
    """Keyword arguments of `lenet_fast.optim.make_optimizer` for a recipe's settings.

    Parameters
    ----------
    settings : dict
        With "optimizer", "weight_decay" and "nesterov" (as in `RECIPES`).

    Returns
    -------
    dict
        The keyword arguments that the optimizer takes (none for "sdlm").

    Raises
    ------
    ValueError
        For a setting the optimizer does not take (nesterov with adam; either with sdlm).
    """
    name = settings["optimizer"]
    if name == "sgd":
        return {"weight_decay": settings["weight_decay"], "nesterov": settings["nesterov"]}
    if name == "adam":
        if settings["nesterov"]:
            raise ValueError("nesterov applies to the sgd optimizer only")
        return {"weight_decay": settings["weight_decay"]}
    if settings["weight_decay"] or settings["nesterov"]:
        raise ValueError(f"weight_decay and nesterov do not apply to the {name} optimizer")
    return {}


def make_optimizer(recipe):
    """The optimizer of a recipe.

    Parameters
    ----------
    recipe : dict
        With "optimizer", "lr", "weight_decay" and "nesterov", as in `RECIPES`.

    Returns
    -------
    lenet_fast.optim.Optimizer
    """
    return _make_optimizer(recipe["optimizer"], recipe["lr"], **optimizer_options(recipe))


def default_out(variant):
    """The model file a run of `variant` writes unless told: ``lenet5-<variant>.npz``.

    Parameters
    ----------
    variant : {"modern", "lecun98"}
        The preset.

    Returns
    -------
    str
    """
    return f"lenet5-{variant}.npz"


def train_settings(given):
    """The settings of a new training run (no ``--resume``), as ``lenet-fast train``
    resolves them: `given` (keys of TRAIN_DEFAULTS and "augment") over TRAIN_DEFAULTS
    and AUGMENT_DEFAULT, then the variant's recipe (RECIPES; SDLM_RECIPE and SDLM_INIT
    with optimizer "sdlm") for what is still None. ``lenet_fast.experiment`` resolves
    its runs' settings here too.

    Parameters
    ----------
    given : dict
        The settings given (the command line's, or a sweep's), by their names in
        `TRAIN_DEFAULTS` and "augment".

    Returns
    -------
    dict
        Every setting of `TRAIN_DEFAULTS` and "augment", resolved.

    Raises
    ------
    ValueError
        If the settings contradict each other (optimizer "sdlm" with variant modern).
    """
    settings = dict(TRAIN_DEFAULTS, augment=AUGMENT_DEFAULT)
    settings.update(given)
    if settings["variant"] not in RECIPES:
        raise ValueError(f"variant must be one of {', '.join(RECIPES)}, "
                         f"got {settings['variant']!r}")
    recipe = RECIPES[settings["variant"]]
    if settings["optimizer"] == "sdlm":
        recipe = dict(recipe, **SDLM_RECIPE, **OPTIMIZER_NEUTRAL)
    elif settings["optimizer"] not in (None, recipe["optimizer"]):
        recipe = dict(recipe, **OPTIMIZER_NEUTRAL)
        if "lr" not in given:
            recipe["lr"] = None  # another optimizer: its own default rate
    for key, value in recipe.items():
        if settings[key] is None:
            settings[key] = value
    if settings["optimizer"] == "sdlm":
        if settings["init"] == "auto":
            settings["init"] = SDLM_INIT
        if settings["variant"] != "lecun98":
            raise ValueError("--optimizer sdlm needs --variant lecun98 (its curvature estimate "
                             "is the paper's, for the paper's network)")
    if settings["out"] is None:
        settings["out"] = default_out(settings["variant"])
    return settings
