# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make demo PORT=8080` serves the demo elsewhere (the simulator takes the port after it).
PORT ?= 8000

.PHONY: demo test test-fast install lint fmt bench messages screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Set up everything and run the whole app on http://127.0.0.1:8000 (embedded mode).
# DEBUG is off by default (production settings need secrets): the demo turns it on.
demo: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo --if-empty
	DEBUG=1 $(BIN)/python manage.py runembedded --port $(PORT) --cloudapi-number

## The whole test suite (with DATABASE_URL / REDIS_URL set, against those services).
test: install
	$(BIN)/python -m pytest

## The inner loop: the suite without the browser, the fault suite and the tests that start
## processes (the folders' conftests mark theirs); `make test` runs them all.
test-fast: install
	$(BIN)/python -m pytest -m "not browser and not faults and not integration"

## What CI checks besides the suite: ruff's rules and formatting, the import contract
## (pyproject's [tool.importlinter]) and the types of the modules in pyproject's [tool.mypy].
## DEBUG=1 lets django-stubs load the settings without production secrets.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DEBUG=1 $(BIN)/mypy

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Every benchmark, each on a database of its own (see bench/run.py); PostgreSQL and Redis.
bench: install
	$(BIN)/python bench/run.py

## Photograph the demo again for the README (docs/screenshots/): make demo's panel and inbox,
## and the panel and analytics pages. Chromium at /usr/bin/chromium; an emoji font
## (fonts-noto-color-emoji) draws the emoji.
screenshots: install
	CHATDESK_SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest -p no:cacheprovider -k "photographs or screenshots" tests/browser/test_readme_screenshots.py tests/browser/test_insights_panel.py

## Refresh translation catalogues (needs GNU gettext); the compiled .mo files are committed.
messages: install
	DEBUG=1 $(BIN)/python manage.py makemessages -l en --no-location --no-obsolete --ignore=.venv --ignore=var --ignore=bench --ignore=tests --ignore=static
	DEBUG=1 $(BIN)/python manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) var
