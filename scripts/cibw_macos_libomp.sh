#!/usr/bin/env bash
# cibuildwheel's before-build on macOS (pyproject.toml, [tool.cibuildwheel.macos]): LLVM's
# OpenMP runtime for the architecture of the wheel about to be built, into
# /tmp/lenet_fast_libomp, where the build's CFLAGS and LDFLAGS point. Apple's clang
# compiles OpenMP (-Xpreprocessor -fopenmp, setup.py) but ships no runtime; this takes
# conda-forge's llvm-openmp, built for old macOS releases, as scikit-learn's wheels do,
# and delocate (cibuildwheel's repair step) then copies libomp.dylib into the wheel.
# LENET_FAST_LIBOMP_SUBDIR (osx-64 or osx-arm64) comes from the per-architecture overrides,
# so an arm64 runner can build the x86_64 wheel too.
# Written for GitHub's macOS runners (Homebrew present); never run on this project's
# Linux machines (docs/source/user-guide/build.md says what was and was not built).
set -euo pipefail
prefix=/tmp/lenet_fast_libomp
subdir=${LENET_FAST_LIBOMP_SUBDIR:?set by pyproject.toml per architecture}
command -v micromamba >/dev/null || brew install micromamba
rm -rf "$prefix"
micromamba create --yes --quiet --prefix "$prefix" --platform "$subdir" \
    --channel conda-forge --override-channels llvm-openmp
test -f "$prefix/include/omp.h" && test -f "$prefix/lib/libomp.dylib"
echo "libomp for $subdir in $prefix"
