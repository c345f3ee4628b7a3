# The README's commands. Each builds what it needs from scratch on a fresh machine.
PYTHON ?= python3
VENV := .venv
# transformers 4.57 environment: the ONNX exporter's (optimum-onnx needs transformers < 4.58) and the
# cross-version checks of saved folders.
COMPAT := .venv-onnx
# torch first and pinned: a bare torch requirement with no torch installed pulls a multi-GB CUDA build.
TORCH := torch==2.13.0
# Debian's Chromium, driven by playwright (a dev extra) in the Space's browser test; apt needs root (or sudo).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test env compat-env bench bench-quick bench-parts clean

# The web demo (space/app.py) on http://127.0.0.1:7860; `mvgpt demo` still answers one question in the terminal.
demo: $(VENV)/.installed
	$(VENV)/bin/python space/app.py

test: $(VENV)/.installed $(COMPAT)/.installed $(CHROMIUM)
	@# pytest exits 5 when it collects no tests: report it instead of failing the build.
	MVGPT_COMPAT_PYTHON=$(CURDIR)/$(COMPAT)/bin/python $(VENV)/bin/python -m pytest; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; elif [ $$rc -ne 0 ]; then exit $$rc; fi
	$(COMPAT)/bin/python -m pytest -p no:cacheprovider tests/test_modeling.py tests/test_chat.py tests/test_onnx.py \
	  tests/test_demo_model.py

# Ours vs SmolVLM2 / LLaVA-OneVision and the machine's physical limits -> benchmarks/RESULTS.md, results.png,
# results.json (~25 min on 2 cores; bench-quick: < 10 min). bench-parts: time per part -> benchmarks/model_parts.md.
bench: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/run.py

bench-quick: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/run.py --quick

bench-parts: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/model_parts.py

env: $(VENV)/.installed
compat-env: $(COMPAT)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q $(TORCH)
	$(VENV)/bin/pip install -q -e ".[dev,space]"
	touch $@

$(COMPAT)/.installed: pyproject.toml
	$(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/pip install -q --upgrade pip
	$(COMPAT)/bin/pip install -q $(TORCH)
	$(COMPAT)/bin/pip install -q -e ".[onnx,dev]"
	touch $@

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) apt-get install -y -qq chromium

clean:
	rm -rf $(VENV) $(COMPAT)
