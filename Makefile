# Two commands work on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
export CHARTLEDGER_HOME ?= ./var
export CHARTLEDGER_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install run test lint bench clean browser-tools

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# The demo practice's owner (a demo only: a real practice runs `chartledger init` by hand).
DEMO_OWNER ?= owner
DEMO_OWNER_PASSWORD ?= demo-owner-password
DEMO_PATIENTS ?= 50
RUN_PORT ?= 8000

run: install
	@if [ ! -f "$(CHARTLEDGER_HOME)/practice.json" ]; then \
		umask 077 && mkdir -p "$(CHARTLEDGER_HOME)" && \
		CHARTLEDGER_OWNER_PASSWORD="$(DEMO_OWNER_PASSWORD)" $(BIN)/chartledger init \
			--name "Demo Practice" --owner "$(DEMO_OWNER)" --owner-name "Demo Owner" \
			< /dev/null > "$(CHARTLEDGER_HOME)/demo-owner.txt" || exit 1; fi
	@CHARTLEDGER_OWNER_PASSWORD="$(DEMO_OWNER_PASSWORD)" $(BIN)/chartledger demo \
		--owner "$(DEMO_OWNER)" --patients "$(DEMO_PATIENTS)" < /dev/null
	@if [ -f "$(CHARTLEDGER_HOME)/demo-owner.txt" ]; then \
		echo "  (owner recovery codes: $(CHARTLEDGER_HOME)/demo-owner.txt)"; fi
	@echo "Chartledger on http://127.0.0.1:$(RUN_PORT) (OpenAPI: http://127.0.0.1:$(RUN_PORT)/docs)"
	@echo "Console: http://127.0.0.1:$(RUN_PORT)/console/"
	$(BIN)/chartledger serve --host 127.0.0.1 --port $(RUN_PORT) < /dev/null

# The console's browser tests drive Debian's chromium (never a browser Playwright downloads);
# the production tests render PDF pages with poppler's pdftoppm to look at them; the fault tests
# step a server's clock back with libfaketime (tests/faults/test_clock_stepped_back.py).
browser-tools:
	@test -x /usr/bin/chromium -a -x /usr/bin/pdftoppm -a -x /usr/bin/faketime || \
		(apt-get update && apt-get install -y chromium poppler-utils faketime)

test: install browser-tools
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/append.py
	$(BIN)/python bench/verify_store.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/rebuild_views.py
	$(BIN)/python bench/bundle.py
	$(BIN)/python bench/export.py
	$(BIN)/python bench/backup.py
	$(BIN)/python bench/imports.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
