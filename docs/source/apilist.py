"""Which names the API reference documents, and the pages that list them.

One rule, used by the docs build (conf.py writes api/ from it) and by
tests/test_docstrings.py (numpydoc's checks over the same names): a public module's
names are its ``__all__`` where it has one, else the functions and classes it defines
whose names do not start with an underscore.
"""

import importlib
import inspect

#: The API reference's sections: (title, what the layer holds, the public modules).
SECTIONS = [
    ("The package", "What ``import lenet_fast`` gives.", ["lenet_fast"]),
    ("Kernels", "The checked kernel entries and their plain NumPy twin.",
     ["lenet_fast.ops", "lenet_fast.reference"]),
    ("Data and files", "MNIST, pictures, model files (npz, safetensors), the ONNX export and "
     "the pretrained models.",
     ["lenet_fast.datasets", "lenet_fast.pictures", "lenet_fast.checkpoint",
      "lenet_fast.safetensors_io", "lenet_fast.onnx_export", "lenet_fast.zoo"]),
    ("The model", "LeNet-5's presets (the model itself: `lenet_fast.LeNet5`).",
     ["lenet_fast.model"]),
    ("Training", "Optimizers (SDLM included), schedules, distortions, recipes, metrics, one "
     "run as a function and sweeps.",
     ["lenet_fast.optim", "lenet_fast.schedules", "lenet_fast.augment", "lenet_fast.recipes",
      "lenet_fast.metrics", "lenet_fast.experiment", "lenet_fast.sweep"]),
    ("Interop", "scikit-learn and PyTorch.", ["lenet_fast.sklearn", "lenet_fast.torch"]),
    ("Figures and the report", "Figures of a model and of runs; the HTML report.",
     ["lenet_fast.plot", "lenet_fast.report"]),
    ("Benchmarks", "Throughput beside the peers, time to accuracy, the busy-core run.",
     ["lenet_fast.bench", "lenet_fast.bench.busy", "lenet_fast.bench.time_to_accuracy"]),
    ("The service", "The draw-a-digit page and the prediction service.", ["lenet_fast.serve"]),
    ("The reproduction", "The paper's figures: the plan and runs, the summary, the page.",
     ["lenet_fast.reproduce", "lenet_fast.reproduce.summary", "lenet_fast.reproduce.page"]),
    ("The command line", "``lenet-fast`` driven from Python.", ["lenet_fast.cli"]),
]


def public_names(modname):
    """The public names of module `modname`: functions and classes (see above)."""
    module = importlib.import_module(modname)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [name for name, obj in vars(module).items()
                 if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
                 and obj.__module__ == module.__name__]
    return [name for name in names
            if inspect.isfunction(getattr(module, name)) or inspect.isclass(getattr(module, name))]


def documented():
    """{module: [(name, home)]}: each object is documented once, on the page of the first
    module of SECTIONS that has it (home None); a later module that hands it on too
    names that first page (home: its module)."""
    first, out = {}, {}
    for _, _, modules in SECTIONS:
        for modname in modules:
            module = importlib.import_module(modname)
            out[modname] = []
            for name in public_names(modname):
                key = id(getattr(module, name))
                out[modname].append((name, first.get(key)))
                first.setdefault(key, modname)
    return out


def public_objects():
    """Dotted names of every documented function, class and public method, once each."""
    out = []
    for modname, names in documented().items():
        module = importlib.import_module(modname)
        for name, home in names:
            if home is None:
                obj = getattr(module, name)
                out.append(f"{modname}.{name}")
                if inspect.isclass(obj):
                    out += [f"{modname}.{name}.{m}" for m, member in vars(obj).items()
                            if not m.startswith("_") and (inspect.isfunction(member)
                                                          or isinstance(member, property))]
    return out


def write_pages(folder):
    """Write the API reference's pages into `folder` (index.rst and one page a module)."""
    folder.mkdir(exist_ok=True)
    index = ["API reference", "=============", "",
             "Every public function and class, generated from its docstring, under its one",
             "public path: a name of ``lenet_fast`` or of one of the public modules below",
             "(the code lives in private folders: :doc:`../contributing/architecture`).", ""]
    pages = documented()
    for title, text, modules in SECTIONS:
        index += [title, "-" * len(title), "", text, "", ".. toctree::", "   :maxdepth: 1", ""]
        index += [f"   {modname}" for modname in modules] + [""]
        for modname in modules:
            lines = [modname, "=" * len(modname), "", f".. automodule:: {modname}",
                     "   :no-members:", "", f".. currentmodule:: {modname}", "",
                     ".. autosummary::", "   :toctree: generated/", "   :nosignatures:", ""]
            lines += [f"   {name}" for name, home in pages[modname] if home is None] + [""]
            elsewhere = [f":obj:`{name} <{home}.{name}>`" for name, home in pages[modname] if home]
            if elsewhere:
                lines += [f"Also in ``{modname}``, documented with the module that hands it on "
                          "first: " + ", ".join(elsewhere) + ".", ""]
            (folder / f"{modname}.rst").write_text("\n".join(lines))
    (folder / "index.rst").write_text("\n".join(index))
