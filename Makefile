# Entry points for developers and CI. The real work lives in scripts/ so that it can
# be run without make, and so CI and developers run exactly the same thing.

VENV := .venv
# Same stamp as scripts/test.sh: the venv is reinstalled when pyproject.toml changes.
STAMP := $(VENV)/.installed
RUFF := $(VENV)/bin/ruff

.DEFAULT_GOAL := help
.PHONY: help .venv test lint fmt run testenv-up testenv-down

help:
	@echo "make test          venv, test services, ruff, pytest (args: make test ARGS='-k logs')"
	@echo "make lint | fmt    ruff check + format check | fix + format"
	@echo "make run           run the dashboard locally (scripts/run.sh)"
	@echo "make testenv-up | testenv-down   start | stop dockerd, redis, the test image"

.venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -e '.[test]'
	touch $@

# scripts/test.sh sets up the venv itself (CI calls it on a clean clone).
test:
	scripts/test.sh $(ARGS)

lint: .venv
	$(RUFF) check .
	$(RUFF) format --check .

# Fix first, then format: some fixes (import sorting) leave code for the formatter.
fmt: .venv
	$(RUFF) check --fix .
	$(RUFF) format .

run: .venv
	scripts/run.sh

testenv-up:
	scripts/testenv.sh up

testenv-down:
	scripts/testenv.sh down
