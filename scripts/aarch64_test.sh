#!/usr/bin/env bash
# Cross-build lenet_fast for aarch64 (64-bit ARM) and run its kernel, model and property
# tests there, under qemu-user, on this x86-64 Debian 12 machine:
#   - the compiler: Debian's gcc-aarch64-linux-gnu (its default flags: armv8-a, whose
#     Advanced SIMD makes the portable path's 4-float GNU vectors NEON);
#   - the extensions: setup.py's own extension list and build (scripts/cross_build_ext.py),
#     so the script builds whatever csrc/ holds;
#   - the Python that runs the tests: Debian's arm64 python3.11 and the libraries it needs,
#     unpacked into a folder (apt-get download + dpkg -x; nothing arm64 is installed);
#   - numpy for aarch64 from its manylinux wheel, the other runtime and test dependencies
#     (pyproject.toml's dependencies and test extra) from their wheels for that machine;
#   - qemu-aarch64 runs that Python: tests/test_ops.py tests/test_model.py
#     tests/test_ops_properties.py (plus any pytest arguments given to this script).
# As root it installs the compiler and qemu with apt-get (and enables Debian's arm64
# package lists); otherwise they must be there. It keeps nothing: everything lives in a
# temporary folder (LENET_FAST_AARCH64_DIR=DIR keeps it in DIR instead, to look at).
# Usage: scripts/aarch64_test.sh [pytest arguments]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$(date +%s)
PY=python3.11                 # Debian 12's Python, the one the arm64 sysroot gets
PYTAG=cp311
TRIPLET=aarch64-linux-gnu
host_python=${PYTHON:-python3}
if [ -n "${LENET_FAST_AARCH64_DIR:-}" ]; then
    work=$LENET_FAST_AARCH64_DIR
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
source "$root/scripts/lib.sh"

step "cross compiler and qemu-user (Debian: gcc-aarch64-linux-gnu qemu-user; arm64 package lists)"
if [ "$(id -u)" = 0 ]; then
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
        gcc-$TRIPLET qemu-user >/dev/null
fi
for tool in $TRIPLET-gcc qemu-aarch64 apt-get dpkg; do
    command -v $tool >/dev/null || {
        echo "error: $tool is missing: as root, apt-get install gcc-$TRIPLET qemu-user" >&2
        exit 1
    }
done
if ! apt-cache show "$PY-minimal:arm64" >/dev/null 2>&1; then
    echo "error: Debian's arm64 package lists are missing: as root, dpkg --add-architecture" \
         "arm64 && apt-get update" >&2
    exit 1
fi

step "arm64 sysroot: $PY and the libraries it loads (apt-get download, dpkg -x)"
sysroot=$work/sysroot
mkdir -p "$work/debs" "$sysroot"
# apt-get download writes as its user _apt where that user can
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then
    chmod 755 "$work" && chown _apt "$work/debs"
fi
# the arm64 packages that Python, its standard library, its headers, libgomp and
# libstdc++ (numpy's wheel links it) are and depend on, transitively (development
# packages and dpkg's own tools left out)
packages=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
               --no-breaks --no-replaces --no-enhances \
               "$PY-minimal:arm64" "lib$PY-stdlib:arm64" "lib$PY-dev:arm64" libgomp1:arm64 \
               libstdc++6:arm64 |
           grep -E '^[a-z0-9].*:arm64$' |
           grep -vE -- '-dev:|^(dpkg|tar|install-info|rpcsvc-proto|linux-libc-dev):' |
           sort -u)
(cd "$work/debs" && apt-get download -qq $packages "lib$PY-dev:arm64")
for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$sysroot"; done
echo "$(ls "$work"/debs | wc -l) packages unpacked"

step "numpy, the runtime and the test dependencies: their wheels for aarch64"
requirements=$("$host_python" - <<'PY'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["test"]))
PY
)
site=$work/site
# one pip resolution for the target machine, only wheels, nothing built or run here
echo "$requirements" > "$work/requirements.txt"
quiet "$host_python" -m pip install -q --disable-pip-version-check --target "$site" \
    --only-binary=:all: --implementation cp --python-version "${PY#python}" --abi "$PYTAG" \
    --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 \
    --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64 -r "$work/requirements.txt"
numpy_include=$(ls -d "$site"/numpy/_core/include 2>/dev/null || ls -d "$site"/numpy/core/include)

step "host tools to cythonize and drive the build: pyproject.toml's build requirements"
"$host_python" -m venv "$work/host"
build_requires=$("$host_python" - <<'PY'
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))
PY
)
echo "$build_requires" > "$work/build-requirements.txt"
quiet "$work/host/bin/python" -m pip install -q --disable-pip-version-check \
    -r "$work/build-requirements.txt"

step "cross-build: setup.py's extensions with $TRIPLET-gcc"
suffix=$("$host_python" -c "import sys; print(f'.cpython-{sys.argv[1]}-$TRIPLET.so')" "${PYTAG#cp}")
pkg=$work/pkg
mkdir -p "$pkg"
# the package's Python files (not the modules a build on this machine left in src/)
(cd src && find lenet_fast -type f ! -name '*.so' ! -name '*.pyd' ! -path '*__pycache__*' \
    -exec cp --parents {} "$pkg/" \;)
"$work/host/bin/python" scripts/cross_build_ext.py --machine aarch64 --cc "$TRIPLET-gcc" \
    --python-include "$sysroot/usr/include/$PY" \
    --python-include "$sysroot/usr/include" \
    --numpy-include "$numpy_include" --ext-suffix "$suffix" --out "$pkg" \
    > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
grep '^lenet_fast:' "$work/build.log" || true
ls "$pkg"/lenet_fast/*.so | xargs -n1 basename

step "under qemu-aarch64: what the package says about itself"
# the arm64 Python, its libraries from the sysroot (-L), the build and the wheels first
# on its path; the tests' own conftest.py and helpers from the checkout. OpenMP threads
# wait passively: spinning threads are emulated instructions too, and the tests run up
# to 8 Python threads with 2 OpenMP threads each on this machine's 2 cores.
run_arm() {
    OMP_WAIT_POLICY=passive PYTHONPATH="$pkg:$site" PYTHONDONTWRITEBYTECODE=1 \
        qemu-aarch64 -L "$sysroot" "$sysroot/usr/bin/$PY" "$@"
}
LENET_FAST_BUILD="$pkg" run_arm - <<'PY'
import json, os, platform, lenet_fast
info = lenet_fast.build_info()
print(platform.machine(), json.dumps({k: info[k] for k in ("isa", "lanes", "isa_built",
      "isa_supported", "openmp", "compile_flags")}))
assert platform.machine() == "aarch64", platform.machine()
assert lenet_fast.__file__.startswith(os.environ["LENET_FAST_BUILD"]), lenet_fast.__file__
assert info["isa"] == "portable" and info["lanes"] == 4 and info["isa_built"] == ["portable"]
assert "-march" not in info["compile_flags"], info["compile_flags"]
PY

step "under qemu-aarch64: kernel, model and property tests"
run_arm -m pytest -q -p no:cacheprovider tests/test_ops.py tests/test_model.py \
    tests/test_ops_properties.py "$@"
step "aarch64 passed"
