# Two commands on a fresh machine: `make run` and `make test`. Nothing but python3, pip and make.
PYTHON ?= python3
PORT   ?= 3000
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint types unit bench bench-setup ui clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/alert-delivery demo

lint: install
	$(BIN)/ruff check alert_delivery tests bench
	$(BIN)/ruff format --check alert_delivery tests bench

types: install
	$(BIN)/mypy

test: lint types
	$(BIN)/pytest

# Alertmanager is the contender in `make bench` (Debian package prometheus-alertmanager); its
# rows say "skipped: not installed" where it cannot be installed.
bench-setup:
	@command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 \
	  || { command -v apt-get >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	       prometheus-alertmanager >/dev/null 2>&1; } \
	  || echo "== Alertmanager could not be installed; its benchmark rows will say so =="

bench: install bench-setup
	$(BIN)/python -m bench

# `make ui PORT=3001`; the daemon gets the settings `make run` used (.alert_delivery/demo.env).
ui: install
	$(BIN)/alert-delivery ui --port $(PORT)

clean:
	rm -rf $(VENV) .alert_delivery .mypy_cache .ruff_cache .pytest_cache
