# crm-assistant: `make run` to try it, `make test` for the whole suite.
SHELL := /bin/bash
VENV := .venv
CLI := $(VENV)/bin/crm-assistant
export RASA_TELEMETRY_ENABLED := false

.PHONY: setup run train test lint unit e2e bench lock clean

setup:  ## install Debian packages and both virtual environments (idempotent)
	@bash scripts/setup.sh

run: setup  ## set up, train if needed, migrate + seed, start Rasa, actions and the gateway
	@$(CLI) run

train: setup  ## train the Rasa model if config.yml, domain.yml or nlu_data/ changed
	@$(CLI) train

lint: setup  ## ruff over the code, mypy --strict over crm_backend, channels and the gateway
	$(VENV)/bin/ruff check assistant actions crm_backend channels voice tests bench
	$(VENV)/bin/ruff format --check assistant actions crm_backend channels voice tests bench
	$(VENV)/bin/mypy

test: setup lint  ## the whole suite: lint, unit, integration, Rasa data validation, end to end
	$(CLI) train
	$(VENV)/bin/pytest

unit: setup
	$(VENV)/bin/pytest tests/unit tests/integration

e2e: setup
	$(CLI) train
	$(VENV)/bin/pytest tests/e2e

bench: setup  ## latency and memory of one assistant turn (see bench/RESULTS.md)
	$(CLI) bench turn

lock:  ## re-resolve requirements/*.in into requirements/*.lock (needs the package registry)
	bash scripts/lock.sh

clean:
	rm -rf $(VENV) .venv-rasa models .rasa
