"""Draw the layers of src/lenet_fast and the imports between them as an SVG.

The docs build calls `write` (conf.py), so the drawing is always that of the code being
documented: one band a layer, from the ground (bottom) up, the modules of each layer
in it, and on the right one arrow from each layer to each layer below that it imports
from, with the number of imports. An import that ran up a layer would be drawn in red
(tests/test_structure.py forbids them).
"""

import sys
from collections import Counter
from html import escape
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from import_graph import LAYERS, layer_of, read_graph  # noqa: E402

TITLES = {
    -1: ("ground", "_version, _isa, _moved, the compiled kernels and build facts"),
    0: ("_compute/", "checked kernel entries, their NumPy twin, the network's tables"),
    1: ("_io/", "MNIST, pictures, model files, the ONNX export"),
    2: ("_model/", "LeNet5, load, the pretrained models"),
    3: ("_training/", "optimizers, SDLM, schedules, distortions, trainer, recipes, runs"),
    4: ("_interop/", "scikit-learn, PyTorch"),
    5: ("_figures/", "figures, the report"),
    6: ("bench/", "throughput, time to accuracy, the busy-core run"),
    7: ("serve/", "the HTTP service: page, predictions, metrics, OpenAPI"),
    8: ("reproduce/", "the paper's figures: plan, runs, summary, page"),
    9: ("cli/", "the lenet-fast command, one module a subcommand"),
    10: ("public", "the public modules: each hands on its layer's names"),
}
BAND, GAP, LEFT, WIDTH, LADDER = 58, 14, 10, 640, 330
_PACKAGES = set()


def _label(name):
    """A module's box: its name in its layer, or its package's (``reference/``)."""
    parts = name.split(".")
    if layer_of(name) < 0 or len(parts) <= 2:
        return parts[-1]
    return parts[2] + "/" if len(parts) > 3 or name + ".__init__" in _PACKAGES else parts[2]


def write(path):
    """Write the drawing to `path` (an .svg file); return the import counts by layer pair."""
    graph = read_graph()
    _PACKAGES.update(f"{name}.__init__" for name in graph
                     if any(other.startswith(name + ".") for other in graph))
    members = {i: [] for i in range(-1, len(LAYERS) + 1)}
    for name in sorted(graph):
        if name != "lenet_fast.__main__" and not name.endswith(tuple(f".{x}" for x in LAYERS)):
            label = _label(name)
            if label not in members[layer_of(name)]:
                members[layer_of(name)].append(label)
    counts = Counter((layer_of(a), layer_of(b)) for a, (deps, _, _) in graph.items()
                     for b in deps if layer_of(a) != layer_of(b) and a != "lenet_fast.__main__")
    rows = list(range(len(LAYERS), -2, -1))  # top of the drawing: the highest layer
    y = {layer: 40 + k * (BAND + GAP) for k, layer in enumerate(rows)}
    height = 40 + len(rows) * (BAND + GAP) + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH + LADDER}" height="{height}" '
           f'viewBox="0 0 {WIDTH + LADDER} {height}" font-family="sans-serif" font-size="11">',
           '<defs><marker id="a" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" '
           'markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>',
           '<text x="10" y="22" font-size="14" font-weight="bold">The layers of src/lenet_fast '
           '(each imports only from those below)</text>']
    for layer in rows:
        top = y[layer]
        title, text = TITLES[layer]
        out.append(f'<rect x="{LEFT}" y="{top}" width="{WIDTH - 20}" height="{BAND}" rx="6" '
                   'fill="#eef3fb" stroke="#7a9cc6"/>')
        out.append(f'<text x="{LEFT + 8}" y="{top + 16}" font-weight="bold">{escape(title)}</text>')
        out.append(f'<text x="{LEFT + 100}" y="{top + 16}" fill="#444">{escape(text)}</text>')
        line, x = [], LEFT + 8
        for label in members[layer]:
            w = 7 * len(label) + 10
            if x + w > WIDTH - 20:
                break
            out.append(f'<rect x="{x}" y="{top + 26}" width="{w}" height="22" rx="3" '
                       'fill="#ffffff" stroke="#9ab"/>')
            out.append(f'<text x="{x + 5}" y="{top + 41}" font-family="monospace">'
                       f'{escape(label)}</text>')
            x += w + 6
    for k, ((a, b), n) in enumerate(sorted(counts.items(), key=lambda item: (-item[0][0], -item[0][1]))):
        x = WIDTH + 10 + (k % 21) * 15
        colour = "#c00" if b > a else "#555"
        y0, y1 = y[a] + BAND / 2, y[b] + BAND / 2
        out.append(f'<line x1="{x}" y1="{y0}" x2="{x}" y2="{y1 - 6 if y1 > y0 else y1 + 6}" '
                   f'stroke="{colour}" stroke-width="1.3" marker-end="url(#a)"><title>'
                   f'{escape(TITLES[a][0])} imports {escape(TITLES[b][0])}: {n}</title></line>')
        out.append(f'<circle cx="{x}" cy="{y0}" r="2.5" fill="{colour}"/>')
        out.append(f'<text x="{x + 2}" y="{(y0 + y1) / 2}" font-size="9" fill="{colour}">{n}</text>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")
    return counts


if __name__ == "__main__":
    print(write(sys.argv[1]))
