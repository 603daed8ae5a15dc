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

.PHONY: help install up down status demo test test-unit test-integration package plan apply destroy fmt lint clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install stocksage with its dev dependencies

up: $(STAMP) ## Start the embedded AWS (moto on :4566), apply services/ (env local), start the local runtime
	$(PY) -m stocksage.local.stack up

down: $(STAMP) ## Stop the local runtime and the emulator; forget the local Terraform state
	$(PY) -m stocksage.local.stack down

status: $(STAMP) ## Show what runs locally and the deployed resources
	$(PY) -m stocksage.local.stack status

demo: up ## The main job end to end on the embedded stack with real market data (SYMBOLS=, LIMIT=)
	$(PY) -m stocksage.local.demo $(if $(SYMBOLS),--symbols $(SYMBOLS)) $(if $(LIMIT),--limit $(LIMIT))

test: $(STAMP) ## All tests: unit, Terraform static checks, integration against the emulator
	$(PY) -m pytest

test-unit: $(STAMP) ## Unit tests only (no emulator)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP) ## Integration tests only (own emulator on a free port, provisioned by Terraform)
	$(PY) -m pytest tests/integration

package: $(STAMP) ## Build the Lambda zip(s) under build/
	$(PY) scripts/package_lambda.py

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

lint: $(STAMP) ## ruff and terraform fmt -check
	$(VENV)/bin/ruff check stocksage lambdas sagemaker scripts tests
	terraform fmt -check -recursive

clean: ## Remove build outputs and local state (keeps .venv)
	rm -rf build out .local .pytest_cache
