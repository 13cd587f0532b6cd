"""Training recipes: the settings `lenet-fast train` uses where the command line is silent.

One home for them and for how a run's settings are resolved (`train_settings`), read by
the CLI (`lenet_fast.cli`), experiments and sweeps (`lenet_fast.experiment`), the
scikit-learn estimator, the time-to-accuracy benchmark (`lenet_fast.bench.time_to_accuracy`)
and whoever wants to train "the default way" from Python (the user guide's "Training
and the recipes" shows how: a `LeNet5` and a `Trainer` from ``RECIPES[variant]`` and
`make_optimizer`).

modern: two epochs to 99.1% test accuracy (mean of seeds 0-19, 19 of them at 99.0% or
more) in seconds. Each of its settings gained
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
    "recipe": None,
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
    "momentum": None,
    "beta1": None,
    "beta2": None,
    "warmup": None,
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

#: Named recipes (``lenet-fast train --recipe NAME``): each replaces its variant's recipe
#: in RECIPES for the settings the command line leaves None (settings given still win).
#: "one-epoch": the modern network to about 99.0% mean test accuracy in one epoch (seeds
#: 0-19: 99.00% with the build it was chosen on, 98.99% with the next), found by
#: ``lenet-fast sweep --holdout 10000`` on the last 10,000 training digits (the
#: documentation's Results page has the search and its 20-seed test figures).
NAMED_RECIPES = {
    "one-epoch": {"variant": "modern", "c3": "full", "epochs": 1, "batch_size": 32,
                  "optimizer": "sgd", "lr": 0.12, "schedule": "onecycle", "warmup": 0.3,
                  "weight_decay": 5e-4, "nesterov": True, "momentum": 0.9,
                  "label_smoothing": 0.1},
}

#: With --optimizer sdlm: the paper's recipe (LeCun et al. 1998, section III-A and
#: appendix C): 20 passes at batch 1 on the paper's schedule, with its rates scaled by
#: 0.4 (eta = 0.0002 for passes 1-2, ...; `lenet_fast.optim` has the measurements) ...
SDLM_RECIPE = {"epochs": 20, "batch_size": 1, "lr": 0.0002, "schedule": "lecun98"}
#: ... from weights uniform in +-2.4/sqrt(fan-in) (`lenet_fast.model`).
SDLM_INIT = "fanin-sqrt"

#: Recipe settings that belong to one optimizer: another optimizer gets these instead.
OPTIMIZER_NEUTRAL = {"weight_decay": 0.0, "nesterov": False, "momentum": None, "beta1": None,
                     "beta2": None}

#: Each optimizer's own hyperparameters among the settings, with the value a run gets
#: when neither the command line nor the recipe gives one: SGD's momentum, Adam's
#: decay rates of the first and second moments. A setting of another optimizer's is an
#: error, and stays None.
OPTIMIZER_HPARAMS = {"sgd": {"momentum": 0.9}, "adam": {"beta1": 0.9, "beta2": 0.999},
                     "sdlm": {}}

#: The settings of OPTIMIZER_HPARAMS, in the order of TRAIN_DEFAULTS.
HPARAM_SETTINGS = ("momentum", "beta1", "beta2")

#: Settings added after runs had been recorded, with what a run had before them (a
#: sweep's run key leaves a setting out at that value, so that the runs recorded
#: before it still count): the optimizer's own default (OPTIMIZER_HPARAMS) or None.
LATER_SETTINGS = ("recipe", *HPARAM_SETTINGS, "warmup")


def drop_later_settings(settings):
    """Remove the LATER_SETTINGS that are at the value runs had before they existed.

    Parameters
    ----------
    settings : dict
        Resolved settings (a sweep run's identity), changed in place.
    """
    own = OPTIMIZER_HPARAMS.get(settings.get("optimizer"), {})
    for key in [k for k in LATER_SETTINGS if k in settings]:
        if settings[key] in (None, own.get(key)):
            del settings[key]


def schedule_options(settings):
    """Keyword arguments of `lenet_fast.schedules.make_schedule` for a run's settings.

    Parameters
    ----------
    settings : dict
        With "schedule" and, optionally, "warmup" (the fraction of a one-cycle
        schedule spent rising to its peak; None: the schedule's default, 0.3).

    Returns
    -------
    dict
        ``{"pct_start": warmup}`` for a one-cycle schedule with a warmup, else {}.

    Raises
    ------
    ValueError
        For a warmup with another schedule.
    """
    warmup = settings.get("warmup")
    if warmup is None:
        return {}
    if settings["schedule"] != "onecycle":
        raise ValueError("--warmup applies to --schedule onecycle only")
    return {"pct_start": warmup}


def optimizer_options(settings):
    """Keyword arguments of `lenet_fast.optim.make_optimizer` for a recipe's settings.

    Parameters
    ----------
    settings : dict
        With "optimizer", "weight_decay" and "nesterov" (as in `RECIPES`).

    Returns
    -------
    dict
        The keyword arguments that the optimizer takes (none for "sdlm"): with
        "momentum" (sgd) or "beta1" and "beta2" (adam) when `settings` has them and
        they are not None (else the optimizer's `OPTIMIZER_HPARAMS` default).

    Raises
    ------
    ValueError
        For a setting the optimizer does not take (nesterov with adam; momentum or
        betas with another optimizer than theirs; any with sdlm).
    """
    name = settings["optimizer"]
    own = OPTIMIZER_HPARAMS.get(name, {})
    if name == "adam" and settings["nesterov"]:
        raise ValueError("nesterov applies to the sgd optimizer only")
    for key in HPARAM_SETTINGS:
        if settings.get(key) is not None and key not in own:
            owner = next(o for o, keys in OPTIMIZER_HPARAMS.items() if key in keys)
            raise ValueError(f"{key} applies to the {owner} optimizer only")
    if name == "sgd":
        options = {"weight_decay": settings["weight_decay"], "nesterov": settings["nesterov"]}
        if settings.get("momentum") is not None:
            options["momentum"] = settings["momentum"]
        return options
    if name == "adam":
        options = {"weight_decay": settings["weight_decay"]}
        if settings.get("beta1") is not None or settings.get("beta2") is not None:
            betas = own["beta1"], own["beta2"]
            options["betas"] = (_or(settings.get("beta1"), betas[0]),
                                _or(settings.get("beta2"), betas[1]))
        return options
    if settings["weight_decay"] or settings["nesterov"]:
        raise ValueError(f"weight_decay and nesterov do not apply to the {name} optimizer")
    return {}


def _or(value, default):
    return default if value is None else value


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


def named_recipe(name, variant=None):
    """The settings of a named recipe (`NAMED_RECIPES`), less its variant.

    Parameters
    ----------
    name : str
        A key of `NAMED_RECIPES`.
    variant : str or None
        The variant a run asks for; it must be the recipe's.

    Returns
    -------
    dict
        The recipe's settings (a copy), without "variant".

    Raises
    ------
    ValueError
        For an unknown name, or a recipe of another variant.
    """
    if name not in NAMED_RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(NAMED_RECIPES)}, got {name!r}")
    recipe = dict(NAMED_RECIPES[name])
    own = recipe.pop("variant")
    if variant is not None and variant != own:
        raise ValueError(f"--recipe {name} is a recipe for --variant {own}")
    return recipe


def train_settings(given):
    """The settings of a new training run (no ``--resume``), as ``lenet-fast train``
    resolves them: `given` (keys of TRAIN_DEFAULTS and "augment") over TRAIN_DEFAULTS
    and AUGMENT_DEFAULT, then the variant's recipe (RECIPES, or the named recipe of
    ``recipe``, NAMED_RECIPES; SDLM_RECIPE and SDLM_INIT with optimizer "sdlm") for
    what is still None. ``lenet_fast.experiment`` resolves
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
        For an unknown or another variant's named recipe, or optimizer "sdlm" with
        variant modern. The other conflicts (an optimizer's own hyperparameter,
        `OPTIMIZER_HPARAMS`, with another optimizer; a warmup with another schedule than
        onecycle; label smoothing with lecun98) are `lenet_fast.RunSettings.resolve`'s
        to check.
    """
    settings = dict(TRAIN_DEFAULTS, augment=AUGMENT_DEFAULT)
    settings.update(given)
    if settings["variant"] not in RECIPES:
        raise ValueError(f"variant must be one of {', '.join(RECIPES)}, "
                         f"got {settings['variant']!r}")
    recipe = RECIPES[settings["variant"]]
    if settings["recipe"] is not None:
        recipe = named_recipe(settings["recipe"], settings["variant"])
    if settings["schedule"] not in (None, recipe["schedule"]):
        recipe = dict(recipe, warmup=None)  # the recipe's warmup is its schedule's
    if settings["optimizer"] == "sdlm":
        recipe = dict(recipe, **SDLM_RECIPE, **OPTIMIZER_NEUTRAL)
    elif settings["optimizer"] not in (None, recipe["optimizer"]):
        recipe = dict(recipe, **OPTIMIZER_NEUTRAL)
        if "lr" not in given:
            recipe["lr"] = None  # another optimizer: its own default rate
    for key, value in recipe.items():
        if settings[key] is None:
            settings[key] = value
    for key, value in OPTIMIZER_HPARAMS.get(settings["optimizer"], {}).items():
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
