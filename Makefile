# One-command habits. The README's commands are the truth; .ci/run runs them.
PY ?= python

.PHONY: dev build test bench docs clean
dev:            ## editable install with the test extras
	$(PY) -m pip install -e ".[test,bench]"
build:          ## rebuild the extensions in place after editing csrc/
	$(PY) -m pip install -e . --no-build-isolation
test:
	$(PY) -m pytest
bench:
	$(PY) -m pytest benchmarks/
docs:           ## the documentation in docs/_build/html (pip install ".[docs]")
	$(MAKE) -C docs html
clean:
	rm -rf build dist src/*.egg-info src/lenet_fast/*.so .pytest_cache .benchmarks
	$(MAKE) -C docs clean
