# RecordKeeper: `make demo` opens the app on a demo office; `make test` runs every suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_HOME ?= $(CURDIR)/.demo-office
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: demo test test-models test-postgres bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	RECORDKEEPER_HOME=$(DEMO_HOME) $(BIN)/recordkeeper demo --reset

test: $(STAMP)
	RK_TEST_DATABASE_FOR_SUITE=$(PG_TEST_URL) $(BIN)/pytest

bench: $(STAMP)
	$(BIN)/pytest tests/benchmarks -p no:cacheprovider -o addopts= -o python_files='bench_*.py' -s

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache
