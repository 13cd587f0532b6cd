# One-command habits. The README's commands are the truth; .ci/run runs them.
PY ?= python
# make test: the venv it creates (and reuses), and extra pytest arguments
VENV ?= .venv
PYTEST_ARGS ?=
ROOT := $(shell id -u 2>/dev/null)

.PHONY: dev build test bench docs wheel aarch64 clean
dev:            ## editable install with the test extras (then: pytest)
	$(PY) -m pip install -e ".[test,bench]"
build:          ## rebuild the extensions in place after editing csrc/
	$(PY) -m pip install -e . --no-build-isolation
# The README's test command, from a fresh clone: as root, Debian's chromium and
# chromium-driver for the page's browser test (not root: that test skips, saying why);
# a venv in $(VENV) with the package, every extra and torch==2.13.0 (a CPU build);
# then the whole suite.
test:
ifeq ($(ROOT),0)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	    echo "make test: apt-get install -y chromium chromium-driver (the browser test)"; \
	    apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
endif
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q ".[test,all]" "torch==2.13.0"
	$(if $(filter 0,$(ROOT)),LENET_FAST_EXPECT_BROWSER=1) $(VENV)/bin/python -m pytest $(PYTEST_ARGS)
wheel:          ## the binary wheel into build/wheel/wheelhouse/, tested as a user installs it (CI does)
	LENET_FAST_WHEEL_DIR="$(CURDIR)/build/wheel" scripts/wheel_test.sh
aarch64:        ## cross-build for aarch64 and run the kernel and model tests under qemu (CI does)
	scripts/aarch64_test.sh
bench:
	$(PY) -m pytest benchmarks/
docs:           ## the documentation in docs/_build/html (pip install ".[docs]")
	$(MAKE) -C docs html
clean:
	rm -rf build dist src/*.egg-info src/lenet_fast/*.so .pytest_cache .benchmarks
	$(MAKE) -C docs clean
