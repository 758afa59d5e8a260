# Two commands work on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
export CHARTLEDGER_HOME ?= ./var
export CHARTLEDGER_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	@if [ ! -f "$(CHARTLEDGER_HOME)/practice.json" ]; then \
		$(BIN)/chartledger init --name "Demo Practice"; fi
	$(BIN)/chartledger serve --host 127.0.0.1 --port 8000

test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/append.py
	$(BIN)/python bench/verify_store.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
