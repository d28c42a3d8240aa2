# Every install step of edgecompress lives here. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test lint bench bench-quick fuzz clean emulators
# Emulated CPUs for `edgecompress verify` and the int8 tests: qemu-user, and an arm64 Python with numpy and
# onnxruntime (tools/emulation/setup-arm64.sh: Debian's arm64 python3.11 + PyPI's aarch64 wheels, ~64 MB).
EMULATION_DIR ?= $(HOME)/.cache/edgecompress/emulation

# CPU-only torch first, from PyTorch's CPU wheel index as its install guide does (pytorch.org/get-started):
# from PyPI, pip would pick a CUDA build (torch + 15 nvidia packages + triton, ~3 GB). The package then finds
# torch installed and keeps it, and installs torch's own dependencies from the usual index (hence --no-deps:
# one request to the CPU index, not one per dependency). constraints.txt pins the CPU build 2.13.0 for CI.
# Offline, with a local wheel folder in pip's configuration (`pip config list`), pip takes torch from there
# after the index fails to answer (a few warnings, ~10 s); `make install TORCH_INDEX=` skips the index.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps -c constraints.txt torch $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/edgecompress demo --out runs/demo

# The report's browser test (tests/report) opens report.html in Debian's headless Chromium. CI runs as root on
# a fresh Debian machine; elsewhere run this step with sudo, once.
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

# qemu-user comes from Debian, as chromium does (root on CI; elsewhere run `sudo make emulators` once).
emulators: install
	@command -v qemu-x86_64 >/dev/null 2>&1 && command -v qemu-aarch64 >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-user; }
	PIP="$(VENV)/bin/pip" bash tools/emulation/setup-arm64.sh "$(EMULATION_DIR)/arm64"

# Two pytest-xdist workers, one torch thread each (tests/conftest.py); tests sharing a costly fixture run on one
# worker, the longest first (tests/work_units.py). `make test PYTEST_JOBS=0` runs in one process.
PYTEST_JOBS ?= 2
test: install chromium emulators lint
	EDGECOMPRESS_EMULATION_DIR="$(EMULATION_DIR)" $(PY) -m pytest -q $(if $(filter-out 0,$(PYTEST_JOBS)),-n $(PYTEST_JOBS) --dist loadgroup)

# pyflakes and import order (pyproject.toml [tool.ruff]); run by `make test`, so CI runs it
lint: install
	$(PY) -m ruff check src tests benchmarks tools

bench: install
	$(PY) -m pip install --quiet -c constraints.txt -e ".[bench]"
	$(PY) -m benchmarks

# the nightly fuzzing run: over 10,000 generated recipes and argument lists (benchmarks/fuzz.py), and the
# untrusted-file property tests at 6x their CI budget with the crafted .ecz files and their peak memory
# (benchmarks/untrusted_files.py). `make bench` runs it too; it rewrites only those sections of BENCHMARKS.md.
fuzz: install
	$(PY) -m benchmarks --only fuzz untrusted

# the README's headline claims, re-measured (about 3 minutes); CI runs it after the tests
bench-quick: install
	$(PY) -m benchmarks --quick

clean:
	rm -rf $(VENV) runs .pytest_cache
