# talkface — the two commands a new user needs: `make demo` and `make test`. Each installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data
STAMP := $(VENV)/.installed
CPBD_VENV := .cpbd-venv

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export GX_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= true

.PHONY: demo test test-fast install system-deps test-system-deps benchmark-build benchmark-atvgnet benchmark-lipgan benchmark-sda benchmark-lipreader benchmark-blinks benchmark-cpbd benchmark-zheng benchmark-zheng-grid benchmark-ddp benchmark-ui benchmark-s3 benchmark-gpu-preflight clean

demo: install  ## build the bundled GRID clips, train AT-net on CPU, score it, log to MLflow
	$(BIN)/talkface benchmark --data-root $(DATA)

test: install test-system-deps  ## the test suite (real ffmpeg, dlib, zarr, Great Expectations, Prefect, MLflow, PostgreSQL, Chromium)
	$(BIN)/python -m pytest --durations=15

test-fast: install  ## the edit loop: everything but the end-to-end flow runs of tests/flows/, stopping at the first failure
	$(BIN)/python -m pytest -x --ignore=tests/flows

benchmark-build: install  ## preprocessing frames/s per worker (GRID, CREMA-D): tracked vs naive, 1 vs 2 workers, full-corpus projections
	$(BIN)/python benchmarks/build_throughput.py

benchmark-atvgnet: install  ## ATVGnet inference frames/s, VG-net training samples/s, DataLoader ratio (CPU; GPU when present)
	$(BIN)/python benchmarks/atvgnet_speed.py --data-root $(DATA)/bench

benchmark-lipgan: install  ## lip GAN parameters, training samples/s of its 3 stages, inference frames/s, peak memory of a paper step (CPU; GPU when present)
	$(BIN)/python benchmarks/lipgan_speed.py --data-root $(DATA)/bench

benchmark-sda: install  ## Vougioukas et al. 2019: parameters, training samples/s, inference frames/s (CPU; GPU when present)
	$(BIN)/python benchmarks/sda_speed.py --data-root $(DATA)/bench

benchmark-zheng: install  ## Zheng et al. 2020: parameters, training samples/s of its four stages, inference frames/s (CPU; GPU when present)
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/zheng_speed.py --data-root $(DATA)/bench

benchmark-zheng-grid: install  ## Zheng's word accuracy and A2L LMD (the four Tab. IV rows) on held-out s1 sentences beside AT-net (shared corpus; about 35 min on CPU)
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/zheng_grid.py --ablation --data-root $(DATA)/bench-s1

benchmark-lipreader: install  ## the lip reader's WER on s1 sentences it never trained on (shared corpus; about 15 min on CPU)
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/lipreader_wer.py --data-root $(DATA)/bench-s1

benchmark-blinks: install  ## blinks/s and durations of real GRID clips by both detectors, beside Vougioukas et al. Tab. 4
	$(BIN)/python benchmarks/blinks_grid.py

benchmark-cpbd: install  ## talkface's CPBD against the cpbd package on real frames (the package goes into $(CPBD_VENV), apart: not a dependency)
	[ -x $(CPBD_VENV)/bin/python ] || { $(PYTHON) -m venv $(CPBD_VENV) && $(CPBD_VENV)/bin/pip install -q cpbd-py312; }
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/cpbd_agreement.py --package-python $(CPBD_VENV)/bin/python

benchmark-ddp: install  ## one stage's training samples/s in 1 and 2 CPU processes (DDP, gloo), losses compared
	$(BIN)/python benchmarks/ddp_cpu.py --data-root $(DATA)/bench

benchmark-ui: install test-system-deps  ## the Prefect UI's first page with 1,000 recorded task runs, on SQLite and on PostgreSQL (headless Chromium)
	$(BIN)/python benchmarks/ui_first_page.py

benchmark-s3: install  ## build throughput to S3 (moto on loopback) against a local data root, same clips; shard writes and training reads alone
	$(BIN)/python benchmarks/build_s3.py

benchmark-gpu-preflight: install  ## what a lent GPU machine gets (wheels, a 6-clip store) and the whole GPU check on the CPU with only its packages
	[ -d benchmarks/gpu_carry/store ] || bash benchmarks/gpu_check.sh --prepare
	bash benchmarks/gpu_check.sh --preflight --dry-run

install: system-deps $(STAMP)

# $(call system_package,TEST,DEBIAN PACKAGE,HOMEBREW PACKAGE): install the package when the shell TEST fails
define system_package
	@$(1) || { \
	  echo "installing $(2)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  if command -v apt-get >/dev/null; then $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $(2); \
	  elif command -v brew >/dev/null; then brew install $(3); \
	  else echo "please install $(2) with your package manager" >&2; exit 1; fi; }
endef

system-deps:  ## ffmpeg from the system's packages when missing
	$(call system_package,command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null,ffmpeg,ffmpeg)

test-system-deps:  ## PostgreSQL's server and Chromium with its driver (the tests start a database and look at both UIs) when missing
	$(call system_package,ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null,postgresql,postgresql)
	$(call system_package,command -v chromedriver >/dev/null,chromium chromium-driver,--cask chromium chromedriver)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)" >&2; exit 1; }
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache
