"""The numbers of `lenet_fast.reproduce`'s figures, from its runs' records.

`summarize` turns the records of a plan's runs (`lenet_fast.sweep.run_sweep`) into a
JSON-able summary: Fig. 5's errors per pass and seed, Fig. 6's errors per training-set
size, Fig. 8's misclassified digits of the median seed, Fig. 9's rows (mean, standard
deviation, a 95% interval of the mean and a 95% interval for one run), the goals of
issue 20, sentences on where the paper's figure lies outside and why, and the departures
from the paper (`departures`). `usable` says whether a record holds what it reads.
"""

import math

import numpy as np

from .._training.optim import sdlm

#: LeCun et al. 1998's figures for LeNet-5 on MNIST (section III-C, Figs. 5, 8 and 9).
#: The public names; the helpers (usable, stats, t975, pct, interval_text) serve the page.
__all__ = ["PAPER", "COPIES", "GROUP_LABELS", "summarize", "departures"]

PAPER = {
    "test_error": 0.0095,              # Fig. 5 end, Fig. 9: 20 passes, no distortions
    "train_error": 0.0035,             # Fig. 5: training error after 19 passes
    "train_error_pass": 19,
    "distorted_test_error": 0.008,     # Fig. 9: with 540,000 distorted copies
    "misclassified": 82,               # Fig. 8
    "passes": 20,
    "train_digits": 60_000,
    "distorted_copies": 540_000,
}

#: Distorted copies per training digit in the paper's fixed set (540,000 / 60,000).
COPIES = PAPER["distorted_copies"] // PAPER["train_digits"]

#: The groups of runs and the figures that need them: "plain" (no distortions, every
#: seed), "affine" (distortions drawn on the fly, every seed), "fixed" (the paper's
#: fixed set), "size" (Fig. 6's smaller training sets, with and without distortions).
GROUP_LABELS = {
    "plain": "LeNet-5, no distortions",
    "affine": "LeNet-5, affine distortions drawn on the fly",
    "fixed": "LeNet-5, the paper's fixed set of {copies:,} distorted copies",
}

#: Two-sided 95% quantiles of Student's t by degrees of freedom (1-30), then 40, 60, 120.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
_T975_TAIL = ((40, 2.021), (60, 2.000), (120, 1.980), (math.inf, 1.960))



# --------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------


def _fraction(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and 0.0 <= value <= 1.0)


def usable(record, n_test=None):
    """Whether an ``ok`` record holds what the figures read (`sweep.run_sweep`'s
    ``usable``): the test error, a history of every pass with its test accuracy (and
    training-set accuracy where asked for), and the misclassified test digits."""
    try:
        params, result = record["params"], record["result"]
        history = result["history"]
        if not (_fraction(result["test_error"]) and isinstance(history, list)
                and len(history) == params["epochs"]):
            return False
        keys = ["val_accuracy"] + (["train_set_accuracy"] if params.get("train_eval") else [])
        if not all(_fraction(h[k]) for h in history for k in keys):
            return False
        errors = result["test_errors"]
        index, predicted = errors["index"], errors["predicted"]
        n = n_test if n_test is not None else result["test_images"]
        return (len(index) == len(predicted) == round(result["test_error"] * result["test_images"])
                and all(isinstance(i, int) and 0 <= i < n for i in index)
                and all(isinstance(d, int) and 0 <= d <= 9 for d in predicted))
    except (KeyError, TypeError, AttributeError):
        return False


def stats(errors):
    """n, mean, std (sample), min, max, ci95 (of the mean) and pi95 (for one more run)."""
    n = len(errors)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None, "ci95": None,
                "pi95": None}
    e = np.asarray(errors, dtype=np.float64)
    mean = float(e.mean())
    out = {"n": n, "mean": mean, "std": None, "min": float(e.min()), "max": float(e.max()),
           "ci95": None, "pi95": None}
    if n > 1:
        std = float(e.std(ddof=1))
        t = t975(n - 1)
        out["std"] = std
        out["ci95"] = [mean - t * std / math.sqrt(n), mean + t * std / math.sqrt(n)]
        out["pi95"] = [mean - t * std * math.sqrt(1 + 1 / n), mean + t * std * math.sqrt(1 + 1 / n)]
    return out


def t975(df):
    """Student's t quantile 0.975 for `df` >= 1 degrees of freedom (table, then
    interpolated in 1/df)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    lo_df, lo_t = len(_T975), _T975[-1]
    for hi_df, hi_t in _T975_TAIL:
        if df <= hi_df:
            w = (1 / lo_df - 1 / df) / (1 / lo_df - 1 / hi_df)
            return lo_t + w * (hi_t - lo_t)
        lo_df, lo_t = hi_df, hi_t
    return 1.960  # pragma: no cover


def _inside(value, interval):
    return None if interval is None else bool(interval[0] <= value <= interval[1])


def _errors_by_pass(record, key):
    return [1.0 - h[key] for h in record["result"]["history"]]


def _median_record(records):
    """The record of the median seed by test error (the lower median; ties by seed)."""
    ranked = sorted(records, key=lambda r: (r["result"]["test_error"], r["params"]["seed"]))
    return ranked[(len(ranked) - 1) // 2] if ranked else None


# --------------------------------------------------------------------------
# The summary
# --------------------------------------------------------------------------


def summarize(plan, records, test_labels):
    """The figures' numbers from the plan's records.

    Parameters
    ----------
    plan : dict
        `make_plan`'s.
    records : list of dict or None
        `sweep.run_sweep`'s, one per run of ``plan["runs"]``.
    test_labels : integer (N,)
        The labels of the test digits the runs were evaluated on (Fig. 8).

    Returns
    -------
    dict
        JSON-able: ``profile``, ``figures``, ``seeds``, ``passes``, ``paper``, ``runs``
        (planned, ok, failed, missing and the per-run rows), ``fig5``, ``fig6``,
        ``fig8``, ``fig9`` (those asked for), ``goals``, ``notes`` (where the paper's
        figure lies outside and why), ``departures``. The same records give the same
        summary.
    """
    test_labels = np.asarray(test_labels)
    ok = {}
    rows, failed, missing = [], [], 0
    for run, record in zip(plan["runs"], records):
        where = (run["group"], run["size"], run["augment"])
        if record is None:
            missing += 1
        elif record.get("status") == "ok" and usable(record, len(test_labels)):
            ok.setdefault(where, {})[run["seed"]] = record
            r = record["result"]
            rows.append({"group": run["group"], "augment": run["augment"], "seed": run["seed"],
                         "train_images": r["train_images"], "test_error": r["test_error"],
                         "train_seconds": round(r["train_seconds"], 1)})
        else:
            failed.append({"group": run["group"], "seed": run["seed"], "size": run["size"],
                           "error": str(record.get("error", "unusable record"))[:300]})
    summary = {
        "format": "lenet_fast.reproduce/1",
        "profile": plan["profile"], "figures": plan["figures"], "seeds": plan["seeds"],
        "passes": plan["passes"], "paper": dict(PAPER),
        "train_digits": plan["train_size"] or PAPER["train_digits"],
        "test_digits": int(len(test_labels)),
        "runs": {"planned": len(plan["runs"]), "ok": len(rows), "failed": len(failed),
                 "missing": missing, "rows": rows, "failures": failed},
    }

    def group(name):
        return ok.get((name, None, "affine" if name == "affine" else "none"), {})

    if 5 in plan["figures"]:
        summary["fig5"] = _fig5(plan, group("plain"))
    if 6 in plan["figures"]:
        summary["fig6"] = _fig6(plan, ok)
    if 8 in plan["figures"]:
        summary["fig8"] = _fig8(group("affine"), group("plain"), test_labels)
    if 9 in plan["figures"]:
        summary["fig9"] = _fig9(plan, group)
    summary["goals"] = _goals(summary)
    summary["notes"] = _notes(summary)
    summary["departures"] = departures()
    return summary


def _fig5(plan, by_seed):
    seeds = sorted(by_seed)
    test = [_errors_by_pass(by_seed[s], "val_accuracy") for s in seeds]
    train = [_errors_by_pass(by_seed[s], "train_set_accuracy") for s in seeds]
    running = [_errors_by_pass(by_seed[s], "train_accuracy") for s in seeds]
    at = min(PAPER["train_error_pass"], plan["passes"])
    out = {"seeds": seeds, "test_error": test, "train_error": train,
           "running_train_error": running, "mean_test_error": None, "mean_train_error": None,
           "end": None}
    if seeds:
        out["mean_test_error"] = np.mean(test, axis=0).tolist()
        out["mean_train_error"] = np.mean(train, axis=0).tolist()
        out["end"] = {"test_pass": plan["passes"],
                      "test": stats([t[-1] for t in test]),
                      "train_pass": at, "train": stats([t[at - 1] for t in train])}
    return out


def _fig6(plan, ok):
    main_size = plan["train_size"] or PAPER["train_digits"]
    sizes = sorted(plan["fig6_sizes"]) + [main_size]
    out = {"sizes": sizes, "seeds": plan["fig6_seeds"], "rows": []}
    for augment in ("none", "affine"):
        for size in sizes:
            if size == main_size:
                by_seed = ok.get(("plain" if augment == "none" else "affine", None, augment), {})
            else:
                by_seed = ok.get(("size", size, augment), {})
            seeds = [s for s in plan["fig6_seeds"] if s in by_seed]
            row = {"augment": augment, "size": size, "seeds": seeds,
                   "test_errors": [by_seed[s]["result"]["test_error"] for s in seeds],
                   "train_errors": None}
            if augment == "none":
                row["train_errors"] = [_errors_by_pass(by_seed[s], "train_set_accuracy")[-1]
                                       for s in seeds]
            row["test"] = stats(row["test_errors"])
            out["rows"].append(row)
    return out


def _misclassified(record, test_labels):
    if record is None:
        return None
    errors = record["result"]["test_errors"]
    return {"seed": record["params"]["seed"], "test_error": record["result"]["test_error"],
            "count": len(errors["index"]), "index": errors["index"],
            "label": [int(test_labels[i]) for i in errors["index"]],
            "predicted": errors["predicted"]}


def _fig8(affine, plain, test_labels):
    return {"paper_count": PAPER["misclassified"],
            "affine": _misclassified(_median_record(list(affine.values())), test_labels),
            "plain": _misclassified(_median_record(list(plain.values())), test_labels)}


def _fig9(plan, group):
    rows = []
    for name, paper in (("plain", PAPER["test_error"]), ("affine", PAPER["distorted_test_error"]),
                        ("fixed", PAPER["distorted_test_error"])):
        by_seed = group(name)
        seeds = sorted(by_seed)
        errors = [by_seed[s]["result"]["test_error"] for s in seeds]
        spread = stats(errors)
        label = GROUP_LABELS[name].format(
            copies=COPIES * (plan["train_size"] or PAPER["train_digits"]))
        rows.append(dict(spread, group=name, label=label, paper=paper, seeds=seeds,
                         errors=errors, paper_in_ci95=_inside(paper, spread["ci95"]),
                         paper_in_pi95=_inside(paper, spread["pi95"])))
    return {"rows": rows}


def _goals(summary):
    """Issue 20's goals for the numbers (over >= 10 seeds, 20 passes): mean without
    distortions <= 1.00% with 0.95% inside the 95% interval of the mean, mean with
    distortions <= 0.85%. None where not measured."""
    rows = {r["group"]: r for r in summary.get("fig9", {}).get("rows", [])}
    plain, affine = rows.get("plain"), rows.get("affine")
    full = summary["passes"] == PAPER["passes"] and summary["train_digits"] == PAPER["train_digits"]

    def check(row, ok):
        return None if row is None or row["n"] == 0 else bool(ok(row))

    return {
        "setting_is_the_papers": bool(full),
        "at_least_10_seeds": None if plain is None else plain["n"] >= 10,
        "plain_mean_at_most_1.00%": check(plain, lambda r: r["mean"] <= 0.0100),
        "paper_0.95%_in_ci95": None if plain is None else plain["paper_in_ci95"],
        "distorted_mean_at_most_0.85%": check(affine, lambda r: r["mean"] <= 0.0085),
    }


def pct(value, digits=2):
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def interval_text(iv, digits=2):
    return "-" if iv is None else f"[{100 * iv[0]:.{digits}f}, {100 * iv[1]:.{digits}f}]%"


def _notes(summary):
    """Plain sentences: where the paper's figure lies outside our intervals, and why."""
    notes = []
    shortened = (summary["passes"] != PAPER["passes"]
                 or summary["train_digits"] != PAPER["train_digits"])
    if shortened:
        notes.append(f"This is a shortened run ({summary['profile']} profile: "
                     f"{summary['passes']} passes on {summary['train_digits']:,} training "
                     f"digits, against the paper's {PAPER['passes']} on "
                     f"{PAPER['train_digits']:,}): its errors are not comparable with the "
                     "paper's figures, and a shortfall here says nothing of the full run.")
    for row in summary.get("fig9", {}).get("rows", []):
        noise = math.sqrt(row["paper"] * (1 - row["paper"]) / 10_000)
        if row["n"] == 1:
            notes.append(f"{row['label']}: one seed ({pct(row['mean'])}), so no interval; the "
                         f"paper's {pct(row['paper'])} is "
                         f"{abs(row['mean'] - row['paper']) / noise:.1f} times the test set's "
                         f"own sampling error ({pct(noise, 3)}: binomial, 10,000 digits) away.")
        if row["n"] < 2 or row["paper_in_ci95"]:
            continue
        side = "below" if row["paper"] < row["ci95"][0] else "above"
        text = (f"{row['label']}: the paper's {pct(row['paper'])} lies {side} the 95% interval "
                f"of our mean over {row['n']} seeds, {interval_text(row['ci95'])} (mean "
                f"{pct(row['mean'])}, std {pct(row['std'], 3)}). ")
        if row["paper_in_pi95"]:
            text += (f"It lies inside the 95% interval for one run, {interval_text(row['pi95'])}: "
                     "the paper's figure is one run, and one run of ours can land there. ")
        else:
            text += ("It lies outside the 95% interval for one run too, "
                     f"{interval_text(row['pi95'])}. ")
        if shortened:
            text += "Why: this is a shortened run (above)."
        else:
            text += (f"Why: the paper's figure is one run, and the test set's sampling alone "
                     f"moves such an error by {pct(noise, 3)} (binomial, 10,000 digits); and "
                     "this training departs from the paper where the paper's own settings are "
                     "unstable here or the paper is silent (the table of departures: initial "
                     "weights, step sizes 0.4 times the paper's, the curvature of the loss"
                     + (", the distortions' ranges, which the paper does not give)."
                        if row["group"] != "plain" else ")."))
        notes.append(text)
    fig8 = summary.get("fig8", {}).get("affine")
    if fig8 is not None:
        notes.append(f"Fig. 8: the median seed ({fig8['seed']}) of the runs with distortions "
                     f"gets {fig8['count']} of {summary['test_digits']:,} test digits wrong, "
                     f"the paper's network {PAPER['misclassified']}.")
    return notes


def departures():
    """The departures from the paper: SDLM's (`lenet_fast.optim.DEPARTURES`) and the
    distortions'.

    Returns
    -------
    list of dict
        One a departure: "what", "paper", "here", "why" and "source".
    """
    from .._training.augment import Affine

    a = Affine().config()
    return [dict(d, source="lenet_fast.optim") for d in sdlm.DEPARTURES] + [
        {"what": "ranges of the distortions",
         "paper": "random planar affine maps: translations, scaling, squeezing, horizontal "
                  "shearing; ranges not given",
         "here": f"lenet_fast.augment.Affine: shift +-{a['shift']:g} px, scale +-{a['scale']:g}, "
                 f"squeeze +-{a['squeeze']:g}, shear +-{a['shear']:g}",
         "why": "the paper gives no ranges; these keep a digit within its frame and "
                "recognisable",
         "source": "lenet_fast.augment"},
        {"what": "how the fixed set of copies is visited",
         "paper": "60,000 digits plus 540,000 distorted copies; 20 passes of 60,000 patterns; "
                  "the order not given",
         "here": "pass p trains on one version of each digit (original or one of its 9 "
                 "copies), each version once every 10 passes",
         "why": "every pass keeps every digit once; 20 passes visit the 600,000 twice",
         "source": "lenet_fast.augment.FixedDistortions"},
    ]
