# Thin entry points; the logic lives in scripts/ and the Python package.
SHELL := /bin/bash
PY := .venv/bin/python
PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup system venv build-sql demo test lint bench reliability soak clean

setup: system venv

system:
	bash scripts/install-system-deps.sh

venv: .venv/.installed

.venv/.installed: pyproject.toml
	bash scripts/setup-venv.sh
	touch $@

build-sql:
	python3 sql/build.py
	$(MAKE) -s -C extension PG_CONFIG=$(PG_CONFIG) install

demo: setup
	$(PY) -m pgmlops.cli demo --reset

lint: venv
	python3 sql/build.py --check
	.venv/bin/ruff check pyclient tests bench migrations scripts sql/build.py
	.venv/bin/mypy

test: setup lint
	.venv/bin/pytest tests

bench: setup
	$(PY) -m bench

reliability: setup
	.venv/bin/pytest tests/reliability -m "reliability or not reliability" --run-slow

# Mixed-load soak on a private cluster: SOAK_SECONDS=60 make soak for a short run (bounded: at most 4 h).
SOAK_SECONDS ?= 600
soak: setup
	$(PY) -m bench.soak --seconds $(SOAK_SECONDS)

clean:
	rm -rf .venv .pgmlops
