# provml — `make run` starts everything with the demo; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
DATA   ?= ./provml-data

.PHONY: run test lint typecheck clean help

help:
	@echo "make run    - install, serve on 127.0.0.1:$(PORT) with the demo, keep serving"
	@echo "make test   - install dev extras, then ruff, mypy and pytest"

$(VENV)/.run-stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[demo]'
	touch $@

$(VENV)/.dev-stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.run-stamp

run: $(VENV)/.run-stamp
	$(BIN)/provml serve --host 127.0.0.1 --port $(PORT) --data-dir $(DATA) --demo

lint: $(VENV)/.dev-stamp
	$(BIN)/ruff check provml capture_lib tracker manager query tests
	$(BIN)/ruff format --check provml capture_lib tracker manager query tests

typecheck: $(VENV)/.dev-stamp
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

clean:
	rm -rf $(VENV) $(DATA) prov-logs .pytest_cache .mypy_cache .ruff_cache
