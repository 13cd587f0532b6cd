"""``lenet-fast reproduce``: LeCun et al. 1998's LeNet-5 experiments, figure by figure,
over many seeds.

The paper's network and optimizer (``variant="lecun98"``, ``optimizer="sdlm"``, with the
departures `lenet_fast.optim.DEPARTURES` lists) are trained by `lenet_fast.experiment.run`
on the sweep engine (`lenet_fast.sweep.run_sweep`: local worker processes, spawned, or a
Dask cluster; every finished run one line of ``DIR/results.jsonl``; a rerun skips the
runs recorded there). From those records come:

- Fig. 5: test and training error after every pass, per seed (training error: the
  training set evaluated after the pass); the mean and range; the paper's end points
  (0.35% training error after 19 passes, 0.95% test error).
- Fig. 6: test error against the training-set size, without and with distortions.
- Fig. 8: the test digits that the median seed's model gets wrong (the paper shows 82,
  of its network trained on distorted digits; the median seed of the runs with
  distortions here, and of those without beside it).
- Fig. 9's LeNet-5 rows: mean, standard deviation, 95% interval of the mean and 95%
  interval for one run, without distortions (paper 0.95%), with distortions drawn
  on the fly (0.8%) and with the paper's own protocol, a fixed set of 540,000
  distorted copies made once (`lenet_fast.augment.FixedDistortions`, 0.8%).

`run_reproduce` runs a `make_plan` and writes ``summary.json``
(`lenet_fast.reproduce.summary.summarize`: the figures' numbers, the Fig. 9 table, the
departures, and here the build, machine, wall time, seeds), ``summary.md``
(`lenet_fast.reproduce.page.format_markdown`) and ``reproduce.html``
(`lenet_fast.reproduce.page.build_html`: one self-contained page, figures as inline
PNGs; needs matplotlib) into the folder, and each figure as a PNG file of its own
(``fig5.png``, ``fig6.png``, ``fig8-distorted.png``, ``fig8-plain.png``, ``fig9.png``).

Profiles (`PROFILES`): ``full`` (the default; about 40 minutes on 2 cores, see
`estimate_seconds`), ``quick`` (a few minutes: fewer seeds and passes, smaller Fig. 6
sets) and ``tiny`` (seconds, for tests: a thousand training digits).
"""

import json
import os
import platform
import shlex
import sys
import time

import numpy as np

from .._training import experiment
from . import page as reproduce_page
from .._training import sweep
from .._version import __version__
from .page import build_html, format_markdown
from .summary import COPIES, PAPER, summarize, usable

#: The figures `lenet-fast reproduce` makes.
FIGURES = (5, 6, 8, 9)

#: What each profile runs: ``passes``; ``seeds`` (default of --seeds) for Figs. 5, 8
#: and 9; ``train_size`` (None: all 60,000 digits); ``test_limit``; Fig. 6's smaller
#: ``fig6_sizes`` (its largest size is ``train_size``) on the first ``fig6_seeds``
#: seeds; the fixed set of distorted copies on the first ``fixed_seeds`` seeds.
PROFILES = {
    "full": {"passes": 20, "seeds": "0-9", "train_size": None, "test_limit": None,
             "fig6_sizes": (15_000, 30_000), "fig6_seeds": 3, "fixed_seeds": 2},
    "quick": {"passes": 6, "seeds": "0-3", "train_size": None, "test_limit": None,
              "fig6_sizes": (7_500, 15_000), "fig6_seeds": 2, "fixed_seeds": 1},
    "tiny": {"passes": 2, "seeds": "0-2", "train_size": 1_000, "test_limit": 500,
             "fig6_sizes": (250, 500), "fig6_seeds": 2, "fixed_seeds": 1},
}

#: Seconds per unit of work, measured on this project's machine (2 cores of an Intel Xeon
#: at 2.3 GHz, two one-thread runs side by side, the build of commit ec7e974): an SDLM
#: step (batch 1; "affine_step": what distortions drawn on the fly add to it), an
#: evaluated digit, a digit of the fixed set distorted, a worker's start. `run_cost` and
#: `estimate_seconds` add them up; a rerun's estimate takes the step's time from the runs
#: already finished (`measured_step_seconds`), and summary.json records both.
COST = {"step": 127e-6, "affine_step": 8e-6, "eval": 27e-6, "distort": 8.3e-6, "start": 4.0}

#: The file names in the output folder.
RESULTS, SUMMARY, MARKDOWN, PAGE = "results.jsonl", "summary.json", "summary.md", "reproduce.html"

#: Summary keys that differ between two invocations with the same finished runs.
VOLATILE_KEYS = ("wall_seconds", "started_at", "finished_at", "machine", "ran_now", "where",
                 "peak_rss_mb", "command", "step_seconds")


class ReproduceError(RuntimeError):
    """Bad arguments or an output folder that cannot be used; finished runs stay saved."""


# --------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------


def parse_figures(text):
    """Figures from "5,6,8,9" (or "all"): a sorted list of distinct figure numbers.

    Parameters
    ----------
    text : str
        Comma-separated figure numbers, each optionally written "fig5" or "Fig. 5"
        (case and spaces ignored), or "all"; read as ``str(text)``, so the int 5 does
        too.

    Returns
    -------
    list of int
        Some of `FIGURES`, sorted, each once.

    Raises
    ------
    ValueError
        For anything that is not a comma-separated list of 5, 6, 8, 9.
    """
    text = str(text).strip()
    if text.lower() == "all":
        return list(FIGURES)
    figures = set()
    for part in text.split(","):
        part = part.strip().lower().removeprefix("fig").strip(". ")
        if not part.isdigit() or int(part) not in FIGURES:
            raise ValueError(f"figures must be some of {', '.join(map(str, FIGURES))} "
                             f"(comma-separated) or all, got {text!r}")
        figures.add(int(part))
    return sorted(figures)


# --------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------


def make_plan(figures=FIGURES, seeds=None, profile="full", *, data_dir=None, download=True):
    """The runs that the figures need.

    Parameters
    ----------
    figures : sequence of int
        Some of `FIGURES`.
    seeds : list of int or None
        Seeds of Figs. 5, 8 and 9 (default: the profile's); Fig. 6 uses the first
        ``fig6_seeds`` of them, the fixed set of copies the first ``fixed_seeds``.
    profile : str
        A key of `PROFILES`.
    data_dir : str, os.PathLike or None
        Where the runs read MNIST (`experiment.run`'s option; None: the default folder).
    download : bool
        Whether the runs may download MNIST there (`experiment.run`'s option).

    Returns
    -------
    dict
        ``figures``, ``seeds``, ``profile`` (its name), the profile's settings, and
        ``runs``: a list of ``{"group", "size", "augment", "seed", "config"}`` (the
        config an `experiment.run` config), every run once, longest first.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    p = PROFILES[profile]
    figures = sorted(set(figures))
    if not figures or any(f not in FIGURES for f in figures):
        raise ValueError(f"figures must be some of {FIGURES}, got {figures}")
    seeds = sweep.parse_seeds(p["seeds"]) if seeds is None else list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of non-negative integers, got {seeds}")
    fig6_seeds = seeds[:p["fig6_seeds"]]
    wanted = []  # (group, size, augment, seed)
    if {5, 8, 9} & set(figures):
        wanted += [("plain", None, "none", s) for s in seeds]
    if {8, 9} & set(figures):
        wanted += [("affine", None, "affine", s) for s in seeds]
    if 9 in figures:
        wanted += [("fixed", None, "none", s) for s in seeds[:p["fixed_seeds"]]]
    if 6 in figures:
        wanted += [(group, None, augment, s) for s in fig6_seeds
                   for group, augment in (("plain", "none"), ("affine", "affine"))]
        wanted += [("size", size, augment, s) for size in p["fig6_sizes"]
                   for augment in ("none", "affine") for s in fig6_seeds]
    runs, seen = [], set()
    for group, size, augment, seed in wanted:
        if (group, size, augment, seed) in seen:
            continue
        seen.add((group, size, augment, seed))
        config = {"variant": "lecun98", "optimizer": "sdlm", "epochs": p["passes"],
                  "seed": seed, "augment": augment,
                  "train_limit": size if size is not None else p["train_size"],
                  "test_limit": p["test_limit"], "data_dir": data_dir, "download": download,
                  "epoch_eval": True, "record_errors": True}
        if augment == "none" and group != "fixed":
            config["train_eval"] = True  # Figs. 5 and 6 draw the training error
        if group == "fixed":
            config["distortion_copies"] = COPIES
        runs.append({"group": group, "size": size, "augment": augment, "seed": seed,
                     "config": config})
    runs.sort(key=lambda r: -run_cost(r["config"]))  # longest first: the last runs are short
    return dict(p, figures=figures, seeds=seeds, fig6_seeds=fig6_seeds, profile=profile,
                runs=runs)


def run_cost(config, cost=COST):
    """Estimated seconds of one run of `config` on one core (`COST`).

    Parameters
    ----------
    config : dict
        An `experiment.run` config, as a `make_plan` run holds it: its ``epochs``,
        ``train_limit`` (None: 60,000 digits), ``test_limit`` (None: 10,000),
        ``augment``, ``train_eval`` and ``distortion_copies`` count.
    cost : dict
        Seconds per unit of work, with the keys of `COST`.

    Returns
    -------
    float
        Seconds: the worker's start, ``epochs`` passes of SDLM steps (plus the distortion
        drawn at each step with ``augment="affine"``), the evaluations after each pass
        and the fixed set's distorted copies.
    """
    n = config.get("train_limit") or PAPER["train_digits"]
    n_test = config.get("test_limit") or 10_000
    passes = config["epochs"]
    step = cost["step"] + (cost["affine_step"] if config.get("augment") == "affine" else 0)
    seconds = cost["start"] + passes * n * step
    seconds += passes * cost["eval"] * (n_test + (n if config.get("train_eval") else 0))
    seconds += cost["distort"] * n * config.get("distortion_copies", 0)
    return seconds


def estimate_seconds(runs, jobs, cost=COST):
    """Wall seconds of `runs` (plan entries) on `jobs` parallel one-thread workers:
    longest first, each to the first free worker (as the sweep hands them out).

    Parameters
    ----------
    runs : list of dict
        Entries of a plan's ``runs`` (`make_plan`), each with its ``config``.
    jobs : int
        Workers running at once (at least 1 is assumed).
    cost : dict
        Seconds per unit of work, with the keys of `COST` (`run_cost`).

    Returns
    -------
    float
        Seconds until the last worker is done (0.0 without runs).
    """
    free = [0.0] * max(1, jobs)
    for run in sorted(runs, key=lambda r: -run_cost(r["config"], cost)):
        k = free.index(min(free))
        free[k] += run_cost(run["config"], cost)
    return max(free)


def measured_step_seconds(records):
    """Seconds per SDLM step measured by finished runs without distortions: the median
    over their passes (a pass slowed by another process counts once), or None.

    Parameters
    ----------
    records : iterable of dict
        Sweep records, as ``results.jsonl`` holds them (``status``, ``params``,
        ``result``); records with an error, with distortions, or damaged are left out.

    Returns
    -------
    float or None
        Seconds per step: the median over those runs' passes of the pass's
        ``seconds`` divided by the run's ``train_images``; None without such a pass.
    """
    per_step = []
    for record in records:
        try:
            params, result = record["params"], record["result"]
            if record["status"] != "ok" or params.get("augment", "none") != "none" \
                    or params.get("distortion_copies") or not result["train_images"] > 0:
                continue
            per_step += [h["seconds"] / result["train_images"] for h in result["history"]
                         if isinstance(h.get("seconds"), (int, float))]
        except (KeyError, TypeError, AttributeError):  # a record damaged by hand: not counted
            continue
    return float(np.median(per_step)) if per_step else None


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------


def check_out_dir(out_dir):
    """Create `out_dir` if needed and check that files can be written in it.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The output folder (its parents are created too); a ``results.jsonl`` already in
        it must be a regular file.

    Raises
    ------
    ReproduceError
        It is a file, or cannot be created or written.
    """
    from .._io.files import check_writable

    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ReproduceError(f"{out_dir} is a file, not a folder")
    try:
        os.makedirs(out_dir, exist_ok=True)
        check_writable(out_dir)
    except OSError as exc:
        raise ReproduceError(f"cannot write in {out_dir}: {exc.strerror or exc}") from None
    results = os.path.join(out_dir, RESULTS)
    if os.path.exists(results) and not os.path.isfile(results):
        raise ReproduceError(f"{results} is not a regular file")


def run_reproduce(out_dir, *, figures=FIGURES, seeds=None, profile="full", jobs=None,
                  scheduler=None, data_dir=None, download=True, echo=None, page=True,
                  command=None):
    """Run what `make_plan` asks for (skipping the runs finished in ``out_dir/results.jsonl``)
    and write ``summary.json``, ``summary.md`` and (with `page`) ``reproduce.html``.

    Parameters
    ----------
    out_dir : path
    figures : sequence of int
        Some of `FIGURES` (as `make_plan`).
    seeds : list of int or None
        As `make_plan` (None: the profile's).
    profile : str
        A key of `PROFILES` (as `make_plan`).
    jobs : int or None
        Local runs at once (default: the usable cores), each on one thread.
    scheduler : str, distributed.Client or None
        A Dask scheduler's address or client: run there (`sweep.run_sweep`).
    data_dir : str, os.PathLike or None
        Where MNIST is (every worker reads it there; None: the default folder).
    download : bool
        Whether to fetch MNIST there if it is missing.
    echo : callable or None
        Called with each line of progress.
    page : bool
        Write the HTML page (needs matplotlib).
    command : str or None
        The command line to show on the page.

    Returns
    -------
    dict
        The summary written to ``summary.json``.

    Raises
    ------
    ReproduceError
        The output folder cannot be used.
    sweep.SweepError, KeyboardInterrupt, OSError
        As `sweep.run_sweep`; finished runs stay saved.
    """
    from .._isa import build_info
    from ..bench._machine import machine_info
    from .._io.datasets import load_mnist
    from .._io.files import atomic_write

    echo = echo or (lambda line: None)
    started = time.perf_counter()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    plan = make_plan(figures, seeds, profile, data_dir=data_dir, download=download)
    check_out_dir(out_dir)
    if page:
        from .._figures.plot import require
        require()
    # read MNIST here once: fetched before the workers start, and Fig. 8's digits
    load_mnist("train", data_dir, download=download, progress=False)
    test_images, test_labels = load_mnist("test", data_dir, download=download, progress=False)
    if plan["test_limit"] is not None:
        limit = plan["test_limit"]
        test_images, test_labels = test_images[:limit], test_labels[:limit]
    results = os.path.join(out_dir, RESULTS)
    configs = [run["config"] for run in plan["runs"]]
    keys = [sweep.run_key(dict(c, threads=1)) for c in configs]
    finished = [r for r in sweep.ResultsFile(results).read()
                if r.get("status") == "ok" and usable(r, len(test_labels))]
    done = {r["key"] for r in finished}
    todo = [run for run, key in zip(plan["runs"], keys) if key not in done]
    if scheduler is None:
        jobs = jobs or sweep.default_jobs(1)
        step = measured_step_seconds(finished)
        estimate = estimate_seconds(todo, jobs, COST if step is None else dict(COST, step=step))
        echo(f"reproduce ({profile}): figures {', '.join(map(str, plan['figures']))}, seeds "
             f"{sweep.format_seeds(plan['seeds'])}, {plan['passes']} passes: "
             f"{len(plan['runs'])} runs, {len(plan['runs']) - len(todo)} finished; about "
             f"{estimate / 60:.0f} min for the rest on {jobs} job(s) at "
             + ("this project's machine's measured speed" if step is None else
                f"{1e6 * step:.0f} us per step, as the finished runs measured"))
    records = sweep.run_sweep(configs, results, jobs=jobs, threads_per_job=1,
                              scheduler=scheduler, echo=echo,
                              usable=lambda r: usable(r, len(test_labels)))
    summary = summarize(plan, records, test_labels)
    ok_results = [r["result"] for r in records if r is not None and r.get("status") == "ok"]
    peaks = [r.get("peak_rss_mb") for r in ok_results if r.get("peak_rss_mb")]
    summary.update({
        "version": __version__, "build": build_info(), "machine": machine_info(),
        "command": command or "", "started_at": started_at,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "where": (f"Dask cluster at {scheduler}" if isinstance(scheduler, str) else
                  "a Dask cluster" if scheduler is not None else
                  f"{jobs} local worker process(es), one thread each"),
        "ran_now": len(todo),
        "train_seconds_total": sum(r["train_seconds"] for r in ok_results),
        "step_seconds": {"measured": measured_step_seconds(
            [r for r in records if r is not None]), "estimate assumed": COST["step"]},
        "peak_rss_mb": {"worker processes (max)": max(peaks) if peaks else None,
                        "this process": experiment.peak_rss_mb()},
        "python": platform.python_version(),
    })
    pngs = reproduce_page.figures(summary, test_images) if page else {}
    summary["wall_seconds"] = time.perf_counter() - started
    html_text = build_html(summary, pngs) if page else None

    outputs = {SUMMARY: json.dumps(summary, indent=1, sort_keys=True) + "\n",
               MARKDOWN: format_markdown(summary)}
    outputs.update((f"{name}.png", png) for name, png in pngs.items())
    if html_text is not None:
        outputs[PAGE] = html_text
    for name, data in outputs.items():  # each file whole or not at all; readable by all
        data = data.encode() if isinstance(data, str) else data
        atomic_write(os.path.join(out_dir, name), lambda f, data=data: f.write(data),
                     suffix=os.path.splitext(name)[1], mode=0o644)
    return summary


def command_line():
    """This process's command line, quoted (for the page).

    Returns
    -------
    str
        ``lenet-fast`` followed by ``sys.argv[1:]``, each argument shell-quoted
        (`shlex.quote`).
    """
    return " ".join(shlex.quote(a) for a in ["lenet-fast", *sys.argv[1:]])
