# Fresh machine: `make demo` or `make test`. All targets are idempotent.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
EXTRAS ?= eval,export,train,demo,imx500,openvino,ops,hub,video,test
# Extra pip arguments for the torch install. Empty: pip's own configuration decides which build of
# torch 2.13.0 it gets (on PyPI for Linux that is the large CUDA build). For the CPU build:
#   make install TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: install demo test test-timing lint bench dist clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install --quiet $(TORCH_PIP_ARGS) torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	bash scripts/install_system_deps.sh
	bash scripts/vendor_onnxruntime_web.sh
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	mkdir -p out
	$(VENV)/bin/picosam2 predict src/picosam2/samples/dog.jpg --point 570,200 --out out/dog_mask.png --overlay out/dog_overlay.png

test: $(STAMP)
	bash scripts/test_by_file.sh $(PY) -m "not timing"

# speed checks as ratios of durations measured in the same run: meaningful on an idle machine
test-timing: $(STAMP)
	$(PY) -m pytest -q -m timing

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(VENV)/bin/picosam2 bench

# wheel + sdist in dist/ (with the weights, samples, calibration windows and demo page), offline
dist: $(STAMP)
	$(PY) -m build --no-isolation --outdir dist .

clean:
	rm -rf $(VENV) out build dist *.egg-info src/*.egg-info
