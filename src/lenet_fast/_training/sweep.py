"""Many trainings: a grid of `lenet_fast.experiment.run` configs, run in parallel on one
machine (joblib's loky process pool) or on a Dask cluster, recorded run by run.

Needs the ``sweep`` extra (joblib) for local runs and the ``cluster`` extra
(dask[distributed]) for a cluster: ``pip install "lenet-fast[sweep]"`` or
``"lenet-fast[cluster]"``. ``lenet-fast sweep`` is the command; `run_sweep` the
function behind it.

Safety of the results file (JSON Lines, one record per finished run):

- Each finished run is appended as one line: one ``os.write`` of the whole line to a
  file opened for appending, under an exclusive lock (``fcntl.flock``), then
  ``fsync``. Local runs are written by the worker process that ran them, before it
  returns the result (so a run that finished is on disk even when the sweep is
  stopped before the parent hears of it); runs on a Dask cluster by this process,
  as they complete. A line is either complete or, after a crash mid-write, a torn
  last line that `ResultsFile.read` skips (the next append starts a new line).
- A run that raises is recorded with ``status: "error"`` and its message, and the
  others go on. Rerunning the same sweep skips the runs recorded ``ok`` (matched by
  `run_key`: the run's resolved settings, so a change of the default recipe runs
  them again) and runs the rest, failed ones included.
- Ctrl-C stops the workers; every run finished before it is already on disk. A
  worker process that dies (killed, out of memory, a crash in compiled code) stops a
  local sweep with `SweepError` (finished runs kept); on Dask the scheduler retries
  the run elsewhere and records it as failed after ``distributed.scheduler.allowed-
  failures`` deaths.

Local workers are loky processes, started fresh (spawned, never forked: a fork of a
process that has run OpenMP can hang), each running its runs with
``threads_per_job`` OpenMP threads (and BLAS limited to as many).
"""

import itertools
import json
import math
import os
import signal
import socket
import time
import traceback
import warnings

from .._compute.ops import usable_cpus
from . import experiment
from .recipes import drop_later_settings

try:  # POSIX; elsewhere only the parent process writes the results file
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

SWEEP_MISSING = 'lenet-fast sweep needs joblib: pip install "lenet-fast[sweep]"'
CLUSTER_MISSING = ('lenet-fast sweep --scheduler needs dask.distributed: '
                   'pip install "lenet-fast[cluster]"')

#: Options of `lenet_fast.experiment.run` that do not change a run's result (left out
#: of `run_key`).
NOT_IN_KEY = ("threads", "out", "data_dir", "download")


class SweepError(RuntimeError):
    """A sweep that cannot go on (a worker died, bad grid); finished runs stay saved."""


# --------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------


def parse_seeds(text):
    """Seeds from "0-5", "0,3,7" or "0-2,10": a list of distinct non-negative ints.

    Parameters
    ----------
    text : str
        Ranges and single seeds, separated by commas.

    Returns
    -------
    list of int
        In the order given.

    Raises
    ------
    ValueError
        For anything else (a reversed range, a negative number).
    """
    seeds = []
    for part in str(text).split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if dash else int(lo)
        except ValueError:
            raise ValueError(f"seeds must look like 0-5 or 0,3,7, got {text!r}") from None
        if first < 0 or last < first:
            raise ValueError(f"bad seed range {part!r} in {text!r} (non-negative, low-high)")
        if last - first >= 100_000:
            raise ValueError(f"seed range {part!r} is too long (at most 100,000 seeds)")
        seeds += [s for s in range(first, last + 1) if s not in seeds]
    return seeds


def format_seeds(seeds):
    """Seeds as `parse_seeds` reads them.

    Parameters
    ----------
    seeds : iterable of int
        The seeds.

    Returns
    -------
    str
        "0-5" for a run of consecutive seeds, else "0,3,7".
    """
    seeds = list(seeds)
    if len(seeds) > 1 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def make_grid(sets, seeds, fixed=None):
    """Every combination of `sets` for every seed, as `experiment.run` configs.

    Parameters
    ----------
    sets : dict of str to list
        Training settings and their values, e.g. ``{"lr": [0.02, 0.05]}``.
    seeds : list of int
    fixed : dict or None
        Options of every run (threads, train_limit, data_dir, ...).

    Returns
    -------
    list of dict
        Seed by seed (all combinations for the first seed, then the next), so that a
        sweep stopped early has every configuration with its first seeds.
    """
    keys = list(sets)
    for key in keys:
        if key == "seed":
            raise ValueError("give the seeds with --seeds (seeds=...), not as a setting")
        if not sets[key]:
            raise ValueError(f"no values for {key}")
    grid = []
    for seed in seeds:
        for values in itertools.product(*(sets[k] for k in keys)):
            grid.append(dict(fixed or {}, **dict(zip(keys, values)), seed=seed))
    return grid


def run_key(config):
    """The identity of a run: canonical JSON of its resolved settings and data options.

    Two configs with the same key give the same result (`experiment.run`: any thread
    count, any data folder holding MNIST). A config that does not resolve keys on
    its own items.

    Parameters
    ----------
    config : dict
        As `lenet_fast.experiment.run` takes it.

    Returns
    -------
    str
    """
    try:
        settings, options = experiment.settings_of(config)
        identity = dict(settings.as_dict(), **options)
    except (ValueError, TypeError, KeyError):
        identity = dict(config)
    for key in NOT_IN_KEY:
        identity.pop(key, None)
    for key, default in experiment.EXTRA_OPTIONS.items():
        if key in identity and identity[key] == default:
            del identity[key]  # the keys of runs recorded before these options existed
    drop_later_settings(identity)  # the keys of runs recorded before those settings
    return json.dumps(identity, sort_keys=True, default=str)


# --------------------------------------------------------------------------
# The results file
# --------------------------------------------------------------------------


class ResultsFile:
    """A JSON Lines file of run records, appended to atomically (module docstring).

    Parameters
    ----------
    path : str or os.PathLike
        The results file; created when missing.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.torn_lines = 0

    def read(self):
        """The records in the file; unreadable lines are skipped and counted in
        ``torn_lines``.

        Returns
        -------
        list of dict
            [] if the file does not exist.
        """
        self.torn_lines = 0
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        records = []
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                self.torn_lines += 1
                continue
            if isinstance(record, dict) and isinstance(record.get("key"), str):
                records.append(record)
            else:
                self.torn_lines += 1
        return records

    def append(self, record):
        """Append `record` as one line: one write, then fsync, under an exclusive lock.

        Parameters
        ----------
        record : dict
            JSON-able.
        """
        data = (json.dumps(record, sort_keys=True) + "\n").encode()
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # after a torn last line: start a new one
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)  # releases the lock


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------


def run_safely(index, config, key, out=None):
    """`experiment.run(config)` that returns its failure instead of raising it.

    Parameters
    ----------
    index : int
        Returned as is (which run of the batch this was).
    config : dict
    key : str
        The run's `run_key`.
    out : path or None
        Append the record to this results file here, in the process that ran it,
        before returning (local sweeps: a finished run is on disk even if the parent
        is interrupted before it receives it).

    Returns
    -------
    (index, record)
        record: key, params (the config less `NOT_IN_KEY`), status "ok" and the
        result, or status "error", the error's type and message and its traceback;
        and the host, process id, seconds and finished_at. KeyboardInterrupt is not
        caught.
    """
    start = time.perf_counter()
    record = {"key": key, "params": _params(config), "host": socket.gethostname(),
              "pid": os.getpid()}
    try:
        record.update(status="ok", result=experiment.run(config))
    except Exception as exc:  # noqa: BLE001 - recorded, the sweep goes on
        record.update(status="error", error=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc(limit=20))
    record.update(seconds=time.perf_counter() - start,
                  finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    if out is not None:
        ResultsFile(out).append(record)
    return index, record


def _import_joblib():
    try:
        import joblib
    except ImportError:
        raise ImportError(SWEEP_MISSING) from None
    return joblib


def default_jobs(threads_per_job=1):
    """Parallel runs that fit this machine's usable cores with `threads_per_job` each.

    Parameters
    ----------
    threads_per_job : int
        OpenMP threads of each run.

    Returns
    -------
    int
        At least 1: the usable cores (`lenet_fast.ops.usable_cpus`: the affinity,
        bounded by a cgroup CPU quota) over `threads_per_job`.
    """
    return max(1, usable_cpus() // threads_per_job)


def _worker_ignores_ctrl_c():
    """Loky worker initializer: Ctrl-C goes to the whole process group; the parent stops
    the workers itself (a worker interrupted while waiting for work would print a
    traceback). A run in progress still sees it: `Trainer.fit` handles SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _local(configs, keys, store, on_result, jobs, threads_per_job):
    """Run on a loky process pool; each worker appends its runs' records to `store`
    (without file locks, this process does), `on_result(j, record)` as they come back."""
    joblib = _import_joblib()
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    out = store.path if fcntl is not None else None
    with joblib.parallel_config(backend="loky", inner_max_num_threads=threads_per_job,
                                initializer=_worker_ignores_ctrl_c), \
            warnings.catch_warnings():
        # stopped early (Ctrl-C, a dead worker), joblib warns of the cancelled runs
        warnings.filterwarnings("ignore", r".*(cancelled|not used)", UserWarning)
        parallel = joblib.Parallel(n_jobs=jobs, return_as="generator_unordered", batch_size=1)
        results = parallel(joblib.delayed(run_safely)(j, c, k, out)
                           for j, (c, k) in enumerate(zip(configs, keys)))
        try:
            for j, record in results:
                if out is None:
                    store.append(record)
                on_result(j, record)
        except TerminatedWorkerError as exc:
            raise SweepError(f"a worker process died (killed, out of memory or crashed): "
                             f"{_first_line(exc)}") from None
        finally:
            results.close()


def _dask(configs, keys, store, on_result, scheduler):
    """Run on a Dask cluster; this process appends each record to `store` as its run
    finishes, and on Ctrl-C also those of the runs finished but not yet received."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ImportError(CLUSTER_MISSING) from None
    own = isinstance(scheduler, str)
    client = Client(scheduler) if own else scheduler
    try:
        futures = [client.submit(run_safely, j, c, k, pure=False)
                   for j, (c, k) in enumerate(zip(configs, keys))]
        index = {f.key: j for j, f in enumerate(futures)}
        received = set()

        def receive(future):
            received.add(future.key)
            try:
                j, record = future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: recorded
                j = index[future.key]
                record = {"key": keys[j], "params": _params(configs[j]), "status": "error",
                          "error": f"{type(exc).__name__}: {exc}",
                          "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            store.append(record)
            on_result(j, record)

        try:
            for future in as_completed(futures):
                receive(future)
        except KeyboardInterrupt:
            for future in futures:
                if future.key not in received and future.status == "finished":
                    receive(future)
            raise
        finally:
            client.cancel(futures)
    finally:
        if own:
            client.close()


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_sweep(grid, out, *, jobs=None, threads_per_job=1, scheduler=None, echo=None,
              usable=None):
    """Run every config of `grid` not yet recorded ``ok`` in `out`; append each result.

    Parameters
    ----------
    grid : list of dict
        `experiment.run` configs (`make_grid`). Their ``threads`` is set to
        `threads_per_job`.
    out : path
        The results file (JSON Lines, `ResultsFile`), created if missing.
    jobs : int or None
        Runs at once on this machine (default: `default_jobs`). Ignored with a
        scheduler, whose workers decide.
    threads_per_job : int
        OpenMP threads of each run.
    scheduler : str, distributed.Client or None
        A Dask scheduler address ("tcp://host:8786") or client: run there instead.
    echo : callable or None
        Called with one line of text per event (start, each finished run).
    usable : callable or None
        ``usable(record) -> bool`` for a record ``ok`` in `out`: False (a record damaged
        by hand, without what the caller needs) runs it again and appends the new
        record, which supersedes it. Default: every ``ok`` record counts.

    Returns
    -------
    list of dict
        The latest record of each run of `grid` (its latest ``ok`` and `usable` one if
        it has one), in grid order (None for a run with no record).

    Raises
    ------
    SweepError
        A local worker process died; the runs finished before are saved.
    KeyboardInterrupt
        Ctrl-C; the runs finished before are saved.
    """
    echo = echo or (lambda line: None)
    if threads_per_job < 1:
        raise ValueError(f"threads_per_job must be >= 1, got {threads_per_job}")
    configs = [dict(config, threads=threads_per_job) for config in grid]
    keys = [run_key(config) for config in configs]
    if len(set(keys)) < len(keys):
        raise SweepError("the grid names the same run twice (a setting repeated, or a value "
                         "equal to the default given twice)")
    store = ResultsFile(out)
    records = store.read()
    finished = {r["key"] for r in records if r.get("status") == "ok"}
    if store.torn_lines:
        echo(f"note: {store.torn_lines} unreadable line(s) in {out} skipped (a write cut "
             "short); their runs will run again")
    if usable is not None:
        wanted = set(keys)
        damaged = {r["key"] for r in records if r["key"] in wanted and r.get("status") == "ok"
                   and not usable(r)}
        if damaged:
            echo(f"note: {len(damaged)} record(s) in {out} marked ok lack what this needs "
                 "(edited or damaged); their runs will run again")
        finished -= damaged
    todo = [i for i, key in enumerate(keys) if key not in finished]
    where = (f"on the Dask cluster at {scheduler}" if isinstance(scheduler, str) else
             "on a Dask cluster" if scheduler is not None else None)
    if scheduler is None:
        jobs = default_jobs(threads_per_job) if jobs is None else jobs
        jobs = max(1, min(jobs, len(todo) or 1))
        where = f"{jobs} job(s) x {threads_per_job} thread(s)"
    echo(f"{len(grid)} run(s) in the grid, {len(grid) - len(todo)} already finished in {out}"
         + (f"; running {len(todo)}, {where}" if todo else ""))
    if todo:
        done = []

        def on_result(j, record):
            done.append(j)
            echo(f"[{len(done)}/{len(todo)}] {_describe(grid[todo[j]])}: {_outcome(record)}")

        pending = [configs[i] for i in todo]
        pending_keys = [keys[i] for i in todo]
        if scheduler is None:
            _local(pending, pending_keys, store, on_result, jobs, threads_per_job)
        else:
            _dask(pending, pending_keys, store, on_result, scheduler)

    def good(record):
        return record.get("status") == "ok" and (usable is None or usable(record))

    latest = {}  # per run: its last good record, else its last record
    for record in store.read():
        previous = latest.get(record["key"])
        if previous is None or good(record) or not good(previous):
            latest[record["key"]] = record
    return [latest.get(key) for key in keys]


def _params(config):
    """The run's config as given, less the options that do not change its result."""
    return {k: v for k, v in config.items() if k not in NOT_IN_KEY}


def _describe(config):
    """The run's settings, and its options where they are not the defaults."""
    defaults = dict(experiment.RUN_OPTIONS, **experiment.EXTRA_OPTIONS)
    return " ".join(f"{k}={v}" for k, v in _params(config).items()
                    if not (k in defaults and v == defaults[k]))


def _outcome(record):
    if record.get("status") == "ok":
        (error, where), r = experiment.error_of(record["result"]), record["result"]
        return f"{where} error {100 * error:.2f}% ({r['train_seconds']:.1f} s training)"
    return f"FAILED: {record.get('error', 'unknown error')}"


# --------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------


def summarize(grid, records, columns):
    """Per configuration (the `columns` settings; seeds pooled): test error statistics.

    Parameters
    ----------
    grid : list of dict
    records : list of dict or None
        `run_sweep`'s result, one per config of `grid`.
    columns : list of str
        The settings that tell configurations apart.

    Returns
    -------
    list of dict
        One per configuration, in grid order: the `columns` values, ``runs`` (in the
        grid), ``ok``, ``failed``, and over the ok runs: ``mean``, ``std`` (sample
        standard deviation, None for fewer than 2 runs), ``min``, ``max`` of the error
        (`experiment.error_of`; fractions) and ``train_seconds`` (mean).
    """
    groups = {}
    for config, record in zip(grid, records):
        name = tuple(config.get(c) for c in columns)
        group = groups.setdefault(name, {"runs": 0, "failed": 0, "errors": [], "seconds": []})
        group["runs"] += 1
        if record is None:
            continue
        if record.get("status") == "ok":
            group["errors"].append(experiment.error_of(record["result"])[0])
            group["seconds"].append(record["result"]["train_seconds"])
        else:
            group["failed"] += 1
    rows = []
    for name, g in groups.items():
        errors = g["errors"]
        n = len(errors)
        mean = sum(errors) / n if n else None
        std = (math.sqrt(sum((e - mean) ** 2 for e in errors) / (n - 1)) if n > 1 else None)
        rows.append(dict(zip(columns, name), runs=g["runs"], ok=n, failed=g["failed"],
                         mean=mean, std=std, min=min(errors) if n else None,
                         max=max(errors) if n else None,
                         train_seconds=sum(g["seconds"]) / n if n else None))
    return rows


def format_table(rows, columns, where="test"):
    """`summarize`'s rows as a markdown table, errors in %.

    Parameters
    ----------
    rows : list of dict
        As `summarize` returns them.
    columns : list of str
        The settings that vary, one column each.
    where : str
        Where the errors were measured ("test", or "validation"): the header's word.

    Returns
    -------
    str
    """
    def pct(value, digits=2):
        return "-" if value is None else f"{100 * value:.{digits}f}"

    head = [*columns, "runs", f"{where} error % mean", "std", "min", "max", "training s (mean)"]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---" if i < len(columns) else "---:" for i in range(len(head))) + "|"]
    for row in rows:
        runs = f"{row['ok']}" + (f" (+{row['failed']} failed)" if row["failed"] else "")
        if row["ok"] + row["failed"] < row["runs"]:
            runs += f" of {row['runs']}"
        cells = [str(row[c]) for c in columns] + [
            runs, pct(row["mean"]), pct(row["std"], 3), pct(row["min"]), pct(row["max"]),
            "-" if row["train_seconds"] is None else f"{row['train_seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
