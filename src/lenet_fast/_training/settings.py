"""A training run's settings, typed and frozen, resolved in one place.

`RunSettings.resolve` builds them from, lowest first, the defaults
(`lenet_fast.recipes.TRAIN_DEFAULTS`), the variant's recipe (`lenet_fast.recipes.RECIPES`,
or the named recipe of ``recipe``, `lenet_fast.recipes.NAMED_RECIPES`;
`lenet_fast.recipes.SDLM_RECIPE` with optimizer "sdlm"), the settings given (the command
line's, a sweep's, a Python caller's) and a resumed checkpoint's, and checks there that
they agree: ``lenet-fast train`` (with or without ``--resume``), `lenet_fast.experiment.run`
and so the sweeps and the reproduction, and the scikit-learn estimator all resolve their
settings through it. A contradiction raises `SettingsError` with the message that
``lenet-fast train`` prints (options named as the command spells them).
"""

from __future__ import annotations

import dataclasses

from .recipes import (
    AUGMENT_DEFAULT,
    HPARAM_SETTINGS,
    OPTIMIZER_HPARAMS,
    TRAIN_DEFAULTS,
    default_out,
    train_settings,
)

#: Settings a resumed run takes from its checkpoint (and may not change).
RESUME_INHERITED = ("variant", "c3", "init", "batch_size", "seed", "optimizer", "lr",
                    "schedule", "augment", "weight_decay", "nesterov", "label_smoothing",
                    "momentum", "beta1", "beta2", "warmup")


class SettingsError(ValueError):
    """Settings that contradict each other or the checkpoint a run resumes."""


def _flag(key):
    return "--" + key.replace("_", "-")


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """The resolved settings of one training run (see the module's text).

    Build them with `resolve`; the fields are the options of ``lenet-fast train`` under
    their `lenet_fast.recipes.TRAIN_DEFAULTS` names, and ``augment``.

    Parameters
    ----------
    variant : {"modern", "lecun98"}
        The preset.
    recipe : str or None
        The named recipe (`lenet_fast.recipes.NAMED_RECIPES`) the settings not given
        came from; None: the variant's default recipe (and a resumed run's).
    c3 : {"full", "lecun"}
        C3's connections.
    init : str
        The initialisation (`lenet_fast.LeNet5`'s ``init``).
    epochs, batch_size : int
        Passes over the training set; digits a step.
    optimizer : str
        A name of `lenet_fast.optim.OPTIMIZERS`.
    lr : float or None
        The base learning rate; None: the optimizer's own default.
    schedule : str
        A name of `lenet_fast.schedules.SCHEDULES`.
    weight_decay : float
        L2 weight decay (sgd, adam).
    nesterov : bool
        Nesterov momentum (sgd).
    label_smoothing : float
        Label smoothing (modern only).
    momentum : float or None
        SGD's momentum; None with another optimizer.
    beta1, beta2 : float or None
        Adam's decay rates of its first and second moment estimates; None with another
        optimizer.
    warmup : float or None
        The fraction of a one-cycle schedule spent rising to ``lr``; None: the schedule's
        default (0.3), and with another schedule.
    threads : int or None
        OpenMP threads; None: the OpenMP default.
    seed : int
        Weights, data order and distortions.
    out : str or None
        The model file; None (`lenet_fast.experiment.run`'s default): not saved.
    augment : {"none", "affine", "elastic"}
        Distortions drawn on the fly.
    """

    variant: str
    recipe: str | None
    c3: str
    init: str
    epochs: int
    batch_size: int
    optimizer: str
    lr: float | None
    schedule: str
    weight_decay: float
    nesterov: bool
    label_smoothing: float
    momentum: float | None
    beta1: float | None
    beta2: float | None
    warmup: float | None
    threads: int | None
    seed: int
    out: str | None
    augment: str

    @classmethod
    def resolve(cls, given=None, *, resumed=None, resume_path=None, default_threads=None,
                save=True):
        """The settings of a run, from the defaults, the recipe, `given` and `resumed`.

        Parameters
        ----------
        given : dict or None
            The settings given, by field name; those absent come from `resumed`, else
            the recipe and the defaults.
        resumed : dict or None
            The settings of the checkpoint a run resumes (its fields of
            `RESUME_INHERITED`, ``epochs``, ``epoch`` done and ``schedule``), or None
            for a new run.
        resume_path : str or None
            The checkpoint's path, for the messages.
        default_threads : int or None
            ``threads`` when not given (None: the OpenMP default).
        save : bool
            False: ``out`` stays None unless given (the model is not saved).

        Returns
        -------
        RunSettings

        Raises
        ------
        SettingsError
            When the settings contradict each other or `resumed`: among them an
            optimizer's own setting (`lenet_fast.recipes.OPTIMIZER_HPARAMS`: momentum,
            beta1, beta2) with another optimizer, a warmup with another schedule than
            onecycle, a named recipe for another variant or with `resumed`.
        """
        given = dict(given or {})
        unknown = sorted(set(given) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise SettingsError(f"unknown setting(s) {', '.join(map(repr, unknown))}")
        if "threads" not in given:
            given["threads"] = default_threads
        if resumed is None:
            try:
                settings = train_settings(given)
            except ValueError as exc:
                raise SettingsError(str(exc)) from None
        else:
            if given.get("recipe") is not None:
                raise SettingsError(f"--recipe applies to a new run; a resumed run keeps the "
                                    f"settings of its checkpoint {resume_path}: drop --recipe")
            settings = cls._resumed(given, resumed, resume_path)
        if settings["label_smoothing"] and settings["variant"] != "modern":
            raise SettingsError("--label-smoothing applies to --variant modern (its softmax "
                                "output) only")
        cls._check_optimizer_settings(settings)
        if not save:
            settings["out"] = given.get("out")
        elif settings["out"] is None:
            settings["out"] = default_out(settings["variant"])
        return cls(**settings)

    @staticmethod
    def _check_optimizer_settings(settings):
        """Refuse an optimizer's own setting with another optimizer, and a warmup with
        another schedule than onecycle."""
        own = OPTIMIZER_HPARAMS.get(settings["optimizer"], {})
        for key in HPARAM_SETTINGS:
            if settings[key] is not None and key not in own:
                owner = next(o for o, keys in OPTIMIZER_HPARAMS.items() if key in keys)
                raise SettingsError(f"{_flag(key)} applies to --optimizer {owner} only")
        if settings["warmup"] is not None and settings["schedule"] != "onecycle":
            raise SettingsError("--warmup applies to --schedule onecycle only")

    @staticmethod
    def _resumed(given, saved, path):
        """A resumed run's settings: the checkpoint's, which `given` may not change."""
        settings = dict(TRAIN_DEFAULTS, augment=AUGMENT_DEFAULT)
        for key in RESUME_INHERITED:
            if key in given and given[key] != saved[key]:
                raise SettingsError(
                    f"{_flag(key)} {given[key]} conflicts with the checkpoint {path} "
                    f"({saved[key]}); a resumed run keeps the checkpoint's "
                    f"{key.replace('_', ' ')}: drop {_flag(key)}")
            settings[key] = saved[key]
        settings["epochs"] = saved["epochs"]
        settings.update(given)
        if saved["epoch"] >= settings["epochs"]:
            more = (f"give --epochs greater than {saved['epoch']} to train further"
                    if saved["schedule"] == "constant" else
                    f"evaluate its model with 'lenet-fast evaluate {path}' or start a new run")
            raise SettingsError(f"the checkpoint {path} has already completed "
                                f"{saved['epoch']} epoch(s); {more}")
        if settings["epochs"] > saved["epochs"] and saved["schedule"] != "constant":
            # The schedule is the checkpoint's; past its run's end it stays at its final
            # rate (cosine: 0), so the extra epochs would change little or nothing.
            raise SettingsError(
                f"cannot extend the run in {path} to {settings['epochs']} epochs: its "
                f"{saved['schedule']} learning-rate schedule was laid out for "
                f"{saved['epochs']} epoch(s) and ends there; resume with --epochs "
                f"{saved['epochs']} or start a new run (only runs with --schedule constant "
                "can be extended)")
        return settings

    def as_dict(self):
        """The settings as a plain, JSON-able dict.

        Returns
        -------
        dict
            Field name -> value.
        """
        return dataclasses.asdict(self)

    def replace(self, **changes):
        """A copy with `changes` (field name -> value), not checked again.

        Parameters
        ----------
        **changes
            The fields to change.

        Returns
        -------
        RunSettings
        """
        return dataclasses.replace(self, **changes)
