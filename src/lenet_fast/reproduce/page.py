"""`lenet_fast.reproduce`'s outputs for people: the summary as markdown (for the README)
and as one self-contained HTML page (figures as inline PNGs; needs matplotlib)."""

import numpy as np

from .._version import __version__
from .summary import PAPER, interval_text, pct
from .._training.sweep import format_seeds


def format_markdown(summary):
    """The summary's tables as markdown (for the README): Fig. 9's rows, Fig. 5's end
    points, Fig. 6, Fig. 8's count, and how long it took.

    Parameters
    ----------
    summary : dict
        As `lenet_fast.reproduce.summary.summarize` returns it.

    Returns
    -------
    str
        Markdown.
    """
    out = []
    if "fig9" in summary:
        out += ["| LeCun et al. 1998, Fig. 9 | paper | seeds | mean | std | min-max | "
                "95% interval of the mean | 95% interval, one run | paper inside |",
                "|---|---:|---:|---:|---:|---|---|---|---|"]
        for r in summary["fig9"]["rows"]:
            inside = ("-" if r["paper_in_ci95"] is None else
                      ("yes" if r["paper_in_ci95"] else "no") + " / "
                      + ("yes" if r["paper_in_pi95"] else "no"))
            out.append(f"| {r['label']} | {pct(r['paper'])} | {r['n']} | {pct(r['mean'])} | "
                       f"{pct(r['std'], 3)} | {pct(r['min'])}-{pct(r['max'])} | "
                       f"{interval_text(r['ci95'])} | {interval_text(r['pi95'])} | {inside} |")
        out.append("")
    end = summary.get("fig5", {}).get("end")
    if end:
        out += [f"Fig. 5, {end['test']['n']} seeds: test error after pass {end['test_pass']} "
                f"{pct(end['test']['mean'])} (std {pct(end['test']['std'], 3)}; paper "
                f"{pct(PAPER['test_error'])}), training error after pass {end['train_pass']} "
                f"{pct(end['train']['mean'])} (paper {pct(PAPER['train_error'])} after pass "
                f"{PAPER['train_error_pass']}).", ""]
    if "fig6" in summary:
        out += ["| Fig. 6: training digits | distortions | seeds | test error mean | std | "
                "training error mean |", "|---:|---|---:|---:|---:|---:|"]
        for r in summary["fig6"]["rows"]:
            train = r["train_errors"]
            out.append(f"| {r['size']:,} | {r['augment']} | {r['test']['n']} | "
                       f"{pct(r['test']['mean'])} | {pct(r['test']['std'], 3)} | "
                       f"{pct(sum(train) / len(train)) if train else '-'} |")
        out.append("")
    fig8 = summary.get("fig8")
    if fig8:
        parts = [f"{name} (median seed {m['seed']}): {m['count']}" for name, m in
                 (("with distortions", fig8["affine"]), ("without", fig8["plain"])) if m]
        out += [f"Fig. 8, misclassified test digits: {'; '.join(parts)} (paper: "
                f"{fig8['paper_count']}).", ""]
    if "wall_seconds" in summary:
        out.append(f"{summary['runs']['ok']} runs ({summary['profile']} profile, seeds "
                   f"{format_seeds(summary['seeds'])}, {summary['passes']} passes), "
                   f"{summary['wall_seconds'] / 60:.1f} minutes of wall time for the "
                   f"{summary.get('ran_now', 0)} run(s) made by this invocation.")
    return "\n".join(out).rstrip() + "\n"


def figures(summary, test_images):
    """The figures of the summary's figures, as PNG files; needs matplotlib.

    Parameters
    ----------
    summary : dict
        `lenet_fast.reproduce.summary.summarize`'s.
    test_images : uint8 (N, 28, 28)
        The test digits (Fig. 8 draws the misclassified ones).

    Returns
    -------
    dict of str to bytes
        PNG files by name, of those the summary has: "fig9" (`plot.seed_spread`),
        "fig5" (`plot.pass_curves`), "fig6" (`plot.size_curves`), "fig8-distorted" and
        "fig8-plain" (`plot.misclassified`).
    """
    from .._figures import plot

    figs = {}
    if "fig9" in summary:
        figs["fig9"] = plot.seed_spread(
            [{"label": r["label"], "errors": r["errors"], "interval": r["ci95"],
              "paper": r["paper"]} for r in summary["fig9"]["rows"]],
            title="test error: each seed (dots), the mean (bar), the 95% interval of the mean "
                  "(line)")
    fig5 = summary.get("fig5")
    if fig5 and fig5["seeds"]:
        marks = [(p, e, f"paper: {label} {pct(e)} after pass {p}") for p, e, label in
                 ((PAPER["train_error_pass"], PAPER["train_error"], "training"),
                  (PAPER["passes"], PAPER["test_error"], "test")) if p <= summary["passes"]]
        figs["fig5"] = plot.pass_curves({"test": fig5["test_error"],
                                         "training (after the pass)": fig5["train_error"]},
                                        paper=marks, title=f"{len(fig5['seeds'])} seeds")
    fig6 = summary.get("fig6")
    if fig6:
        series = []
        for augment, label in (("none", "test, no distortions"),
                               ("affine", "test, distortions on the fly")):
            rows = [r for r in fig6["rows"] if r["augment"] == augment]
            series.append((label, [r["size"] for r in rows], [r["test_errors"] for r in rows]))
        rows = [r for r in fig6["rows"] if r["augment"] == "none"]
        series.append(("training, no distortions", [r["size"] for r in rows],
                       [r["train_errors"] for r in rows]))
        marks = []
        if fig6["sizes"][-1] == PAPER["train_digits"]:
            marks = [(PAPER["train_digits"], PAPER["test_error"], "paper: 0.95%"),
                     (PAPER["train_digits"], PAPER["distorted_test_error"],
                      "paper, distortions: 0.8%")]
        figs["fig6"] = plot.size_curves(series, paper=marks,
                                        title=f"seeds {format_seeds(fig6['seeds'])}")
    for key, name, label in (("affine", "fig8-distorted", "trained with distortions"),
                             ("plain", "fig8-plain", "trained without distortions")):
        m = summary.get("fig8", {}).get(key)
        if m is not None:
            idx = np.asarray(m["index"], dtype=np.int64)
            figs[name] = plot.misclassified(
                test_images[idx], m["label"], m["predicted"],
                title=f"{label}: seed {m['seed']} (the median), {m['count']} errors (paper: "
                      f"{summary['fig8']['paper_count']})")
    return {name: plot.png_bytes(fig) for name, fig in figs.items()}


def build_html(summary, pngs):
    """The page: the figures, tables and notes of the summary; needs matplotlib.

    Parameters
    ----------
    summary : dict
        `summarize`'s, with the invocation's keys (`lenet_fast.reproduce.run_reproduce`).
    pngs : dict of str to bytes
        `figures`'s.

    Returns
    -------
    str
        A complete HTML document with no external reference.
    """
    import html

    from .._figures.report import html_page, html_table, img_tag

    esc = html.escape
    parts = [f"<h1>LeCun et al. 1998, LeNet-5 on MNIST: reproduced over "
             f"{len(summary['seeds'])} seed(s)</h1>",
             f"<p>lenet_fast {esc(summary.get('version', __version__))}, "
             f"<code>{esc(summary.get('command', ''))}</code>; profile "
             f"<b>{esc(summary['profile'])}</b>: the paper's network and optimizer (SDLM), "
             f"{summary['passes']} passes over {summary['train_digits']:,} training digits, "
             f"tested on {summary['test_digits']:,}. {summary['runs']['ok']} of "
             f"{summary['runs']['planned']} runs finished"
             + (f", {summary['runs']['failed']} failed" if summary['runs']['failed'] else "")
             + (f", {summary['runs']['missing']} not run" if summary['runs']['missing'] else "")
             + ".</p>"]
    for note in summary["notes"]:
        parts.append(f'<p class="warn">{esc(note)}</p>')
    if "fig9" in summary:
        rows = summary["fig9"]["rows"]
        parts.append("<h2>Fig. 9: LeNet-5's test error over seeds</h2>")
        parts.append(html_table(
            [(r["label"], pct(r["paper"]), r["n"], pct(r["mean"]), pct(r["std"], 3),
              f"{pct(r['min'])} - {pct(r['max'])}", interval_text(r["ci95"]),
              interval_text(r["pi95"]),
              "-" if r["paper_in_ci95"] is None else
              f"{'yes' if r['paper_in_ci95'] else 'no'} / {'yes' if r['paper_in_pi95'] else 'no'}")
             for r in rows],
            ("", "paper", "seeds", "mean", "std", "min - max", "95% interval of the mean",
             "95% interval for one run", "paper inside (mean / one run)")))
        parts.append('<p class="note">95% interval of the mean: mean +- t(0.975, n-1) std / '
                     "sqrt(n), where the mean of many runs lies; for one run: mean +- t std "
                     "sqrt(1 + 1/n), where one more run (such as the paper's one) would lie. "
                     "The standard deviation is over seeds (sample, n-1).</p>")
        parts.append(img_tag(pngs["fig9"], "Fig. 9 rows"))
        parts.append("<h3>The goals of issue 20</h3>" + html_table(
            [(k, "-" if v is None else ("yes" if v else "no"))
             for k, v in summary["goals"].items()], ("goal", "met")))
    fig5 = summary.get("fig5")
    if "fig5" in pngs:
        end = fig5["end"]
        parts += ["<h2>Fig. 5: error after every pass</h2>", img_tag(pngs["fig5"], "Fig. 5"),
                  html_table([("test error, pass " + str(end["test_pass"]),
                               pct(end["test"]["mean"]), pct(end["test"]["std"], 3),
                               pct(PAPER["test_error"])),
                              ("training error, pass " + str(end["train_pass"]),
                               pct(end["train"]["mean"], 3), pct(end["train"]["std"], 3),
                               pct(PAPER["train_error"]))],
                             ("", "mean", "std", "paper")),
                  '<p class="note">Training error: the whole training set evaluated after the '
                  "pass (the running error during the pass is in summary.json).</p>"]
    if "fig6" in summary:
        parts += ["<h2>Fig. 6: test error against the training-set size</h2>",
                  img_tag(pngs["fig6"], "Fig. 6"),
                  html_table([(f"{r['size']:,}", r["augment"], r["test"]["n"],
                               pct(r["test"]["mean"]), pct(r["test"]["std"], 3))
                              for r in summary["fig6"]["rows"]],
                             ("training digits", "distortions", "seeds", "test error", "std"))]
    if "fig8" in summary:
        parts.append("<h2>Fig. 8: the misclassified test digits of the median seed</h2>")
        parts += [img_tag(pngs[name], name) for name in ("fig8-distorted", "fig8-plain")
                  if name in pngs]
    parts.append("<h2>Where this departs from the paper</h2>" + html_table(
        [(d["what"], d["paper"], d["here"], d["why"]) for d in summary["departures"]],
        ("", "paper", "here", "why")))
    build = summary.get("build", {})
    machine = summary.get("machine", {})
    parts.append("<h2>Build, machine, time</h2>" + html_table([
        ("lenet_fast", summary.get("version", __version__)),
        ("build", ", ".join(f"{k}={v}" for k, v in build.items())),
        ("machine", f"{machine.get('cpu_model')}, {machine.get('usable_cpus')} usable CPU(s); "
                    f"{machine.get('platform')}; Python {machine.get('python')}"),
        ("where the runs ran", summary.get("where", "")),
        ("wall time of this invocation", f"{summary.get('wall_seconds', 0) / 60:.1f} min "
                                         f"({summary.get('ran_now', 0)} run(s) made)"),
        ("seconds of training, all runs", f"{summary.get('train_seconds_total', 0):,.0f} s"),
        ("SDLM step (one image), median pass without distortions",
         ", ".join(f"{k} {1e6 * v:.0f} us" for k, v in
                   (summary.get("step_seconds") or {}).items() if v)),
        ("peak memory", ", ".join(f"{k} {v:,.0f} MB" for k, v in
                                  (summary.get("peak_rss_mb") or {}).items() if v)),
        ("seeds", format_seeds(summary["seeds"])),
    ]))
    rows = summary["runs"]["rows"]
    parts.append(f"<details><summary>every run ({len(rows)})</summary>" + html_table(
        [(r["group"], r["augment"], r["seed"], f"{r['train_images']:,}", pct(r["test_error"]),
          r["train_seconds"]) for r in rows],
        ("group", "distortions", "seed", "training digits", "test error", "training s"))
        + "</details>")
    for f in summary["runs"]["failures"]:
        parts.append(f'<p class="warn">failed: {esc(f["group"])} seed {f["seed"]}: '
                     f'{esc(f["error"])}</p>')
    parts.append(f'<p class="note">Made on {esc(summary.get("finished_at", ""))}.</p>')
    return html_page("lenet-fast reproduce", parts)
