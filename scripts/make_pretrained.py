"""Remake the pretrained models shipped in src/lenet_fast/_model/zoo (one command):

    python scripts/make_pretrained.py [--data-dir D] [--only modern|lecun98]

For each model of `lenet_fast.zoo.COMMANDS`, runs its ``lenet-fast train`` command in a
fresh process (the installed build: rebuild first after changing the kernels), measures
the trained model's accuracy on the 10,000 MNIST test digits, and writes
``zoo/<name>.npz`` with its provenance (command, build, version, test accuracy, date)
and ``zoo/SHA256SUMS``. MNIST comes from --data-dir, else $LENET_FAST_DATA_DIR, else
the download cache, as for ``lenet-fast train``.
"""

import argparse
import datetime
import hashlib
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import lenet_fast
from lenet_fast._model import pretrained as zoo  # the module that reads the models
from lenet_fast.checkpoint import save_model
from lenet_fast.datasets import load_mnist
from lenet_fast.metrics import evaluate

#: Where `lenet_fast.pretrained` reads the models (zoo.FOLDER), in this checkout's sources.
FOLDER = Path(__file__).resolve().parents[1] / "src" / "lenet_fast" / "_model" / "zoo"


def make(name, data_dir, folder):
    args = list(zoo.COMMANDS[name])
    extra = ["--data-dir", data_dir] if data_dir else []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.npz"
        cmd = [sys.executable, "-m", "lenet_fast", *args, "--no-progress", "--out", str(out), *extra]
        print("$", shlex.join(["lenet-fast", *args]), flush=True)
        subprocess.run(cmd, check=True)
        model = lenet_fast.load(out)
    accuracy = evaluate(model, *load_mnist("test", data_dir))["accuracy"]
    provenance = {
        "command": shlex.join(["lenet-fast", *args]),
        "build": lenet_fast.build_info(),
        "version": lenet_fast.__version__,
        "test_accuracy": accuracy,
        "made": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, folder / f"{name}.npz", provenance=provenance)
    os.chmod(folder / f"{name}.npz", 0o644)   # package data: readable by every user
    print(f"{name}: test accuracy {accuracy:.2%} -> {folder / f'{name}.npz'}", flush=True)


def write_sums(folder):
    lines = [f"{hashlib.sha256((folder / f'{name}.npz').read_bytes()).hexdigest()}  {name}.npz"
             for name in zoo.NAMES if (folder / f"{name}.npz").is_file()]
    (folder / zoo.SUMS).write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--only", choices=zoo.NAMES, action="append")
    parser.add_argument("--folder", type=Path, default=FOLDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in args.only or zoo.NAMES:
        make(name, args.data_dir, args.folder)
    write_sums(args.folder)


if __name__ == "__main__":
    main()
