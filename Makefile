# Entry points for people and CI. `make` (or `make help`) lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
DVC := $(VENV)/bin/dvc
STAMP := $(VENV)/.installed

# The embedded default: Prefect's state lives in ./.prefect. `make run`, `run-b` and
# `sweep` use PREFECT_API_URL when it is set (environment or profile), else this
# checkout's local server, started in the background on first use and kept for the next
# run (scripts/prefect_local.py; `make prefect-stop` stops it). Its port is not 4200,
# where `make up` serves the stack's UI. A flow started another way with no
# PREFECT_API_URL starts a temporary server (slow on first start, hence the timeout).
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PATH := $(abspath $(VENV))/bin:$(PATH)

PREFECT_LOCAL_PORT ?= 4201
PREFECT_API := $(PY) scripts/prefect_local.py --port $(PREFECT_LOCAL_PORT)

# The raw data is checked (and cached in DVC) again only when it, its .dvc file or the
# venv changed, or DVC's cache lacks it: a run with nothing to do starts no Python here.
RAW := data/raw/iris.csv
RAW_OBJECT := $(shell sed -n 's|^- md5: \(..\)\(.*\)|.dvc/cache/files/md5/\1/\2|p' $(RAW).dvc)
RAW_CHECKED := .dvc/tmp/mltoy-raw-data.checked

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: setup
setup: $(STAMP) ## Create .venv from the lock file (requirements-dev.lock)

$(STAMP): requirements-dev.lock pyproject.toml scripts/setup-venv.sh
	VENV=$(VENV) scripts/setup-venv.sh requirements-dev.lock
	@touch $@

.PHONY: data
data: setup $(RAW_CHECKED) ## Write data/raw/iris.csv from scikit-learn's copy if missing; check it, cache it in DVC

$(RAW_CHECKED): $(RAW).dvc $(STAMP) $(or $(wildcard $(RAW)),FORCE) $(or $(wildcard $(RAW_OBJECT)),FORCE)
	$(PY) -m deploy.raw_data
	@mkdir -p $(@D) && touch $@

.PHONY: FORCE
FORCE:

.PHONY: run
run: data ## Run option A (dvc repro under Prefect) on the embedded default; print metrics
	api=$$($(PREFECT_API)) && PREFECT_API_URL=$$api $(PY) -m flows.cli a

.PHONY: run-b
run-b: data ## Run option B (Prefect-owned stage DAG) on the embedded default
	api=$$($(PREFECT_API)) && PREFECT_API_URL=$$api $(PY) -m flows.cli b

# make sweep SWEEP="-S train.C=0.1,1 -S split.seed=1,2" OPTION=b
SWEEP ?=
OPTION ?= a

.PHONY: sweep
sweep: data ## A parameter sweep here (SWEEP="-S train.C=0.1,1 ...", OPTION=a|b); prints the leaderboard
	api=$$($(PREFECT_API)) && PREFECT_API_URL=$$api $(PY) -m flows.cli sweep $(SWEEP) --option $(OPTION)

.PHONY: prefect-start
prefect-start: setup ## Start the local Prefect server (if not running) and point the client profile at it
	@api=$$($(PREFECT_API) --local) && \
		$(VENV)/bin/prefect config set PREFECT_API_URL=$$api >/dev/null && \
		echo "Prefect UI: $${api%/api}  (client profile in $(PREFECT_HOME): plain 'python -m flows.cli'" && \
		echo " and 'prefect' use it too; 'make prefect-unset' forgets it, 'make prefect-stop' stops it)"

.PHONY: prefect-stop
prefect-stop: setup ## Stop the local Prefect server in the background (the next make run starts it again)
	$(VENV)/bin/prefect server stop

.PHONY: prefect-unset
prefect-unset: setup ## Forget the server in the client profile (plain flows.cli: a temporary server again)
	$(VENV)/bin/prefect config unset PREFECT_API_URL -y >/dev/null

.PHONY: test
test: setup data ## Run every test (unit, flow, end-to-end; installs Docker if root and missing)
	$(PY) -m pytest

.PHONY: test-fast
test-fast: setup data ## Run unit tests only (seconds)
	$(PY) -m pytest tests/unit

.PHONY: e2e
e2e: setup ## Run the end-to-end tests against a fresh compose stack (built and torn down)
	$(PY) -m pytest tests/e2e

# ---- the compose stack (reads .env; see .env.example) ----
COMPOSE := docker compose
GIT_HELPER := !python3 '$(CURDIR)/scripts/git-credential-stack'

.PHONY: env
env: ## Write .env: random secrets (mode 600), DOCKER_GID, Git credentials, stand-ins if needed
	python3 scripts/make_env.py .env

.env:
	python3 scripts/make_env.py $@

.PHONY: env-check
env-check:
	@test -f .env || { echo "No .env: make env writes one (or make up does)." >&2; exit 1; }

# MLTOY_BUILD=0: use the images .env names as they are (the e2e suite built them already).
MLTOY_BUILD ?= 1

.PHONY: up
up: .env ## Start the stack (writes .env if missing, builds, seeds Git if empty); print its URLs
ifneq ($(MLTOY_BUILD),0)
	@scripts/stage-ca-certs.sh >/dev/null
	@scripts/ensure-base-image.sh
	$(COMPOSE) build
endif
	$(COMPOSE) up -d --wait --no-build git
	@scripts/git-seed.sh
	$(COMPOSE) up -d --wait --no-build
	$(COMPOSE) wait deploy
	@echo "Prefect UI: http://$$($(COMPOSE) port gateway 4200)  (user:password = PREFECT_AUTH_STRING in .env)"
	@echo "Git:        http://$$($(COMPOSE) port git 8080)/mltoy.git  (make git-remote adds it as 'stack')"
	@echo "S3 (DVC):   http://$$($(COMPOSE) port s3 9000)  (make remote-config writes .dvc/config.local)"
	@if $(COMPOSE) config --services | grep -qx mlflow; then \
		echo "MLflow UI:  http://$$($(COMPOSE) port mlflow 5000)  (user admin, MLFLOW_ADMIN_PASSWORD in .env)"; fi

.PHONY: registry-push
registry-push: setup env-check ## Push the worker's images to the stack's registry (compose.registry.yaml)
	$(PY) -m deploy.registry_push

.PHONY: worker-join
worker-join: env-check ## Start a worker on another Docker host: WORKER_HOST=ssh://user@host (docs/scale-out.md)
	scripts/worker-join.sh join

.PHONY: worker-leave
worker-leave: env-check ## Remove that worker: WORKER_HOST=ssh://user@host
	scripts/worker-join.sh leave

.PHONY: git-remote
git-remote: env-check ## Add the stack's Git server as remote 'stack' (credentials read from .env)
	@url="http://$$($(COMPOSE) port git 8080)/mltoy.git"; \
	git remote get-url stack >/dev/null 2>&1 && git remote set-url stack "$$url" || git remote add stack "$$url"; \
	git config "credential.$${url%/mltoy.git}.helper" ""; \
	git config --add "credential.$${url%/mltoy.git}.helper" "$(GIT_HELPER)"; \
	echo "remote 'stack' = $$url (git push stack main runs the pushed commit)"

.PHONY: remote-config
remote-config: setup env-check ## Write .dvc/config.local: the stack's S3 remote with the developer key
	$(PY) -m deploy.host_remote

.PHONY: hooks
hooks: setup ## Install the team's git hooks (pre-commit: ruff, dvc status; DVC's post-checkout)
	$(VENV)/bin/pre-commit install --install-hooks
	$(VENV)/bin/pre-commit install --hook-type post-checkout

.PHONY: down
down: env-check ## Stop the stack (volumes kept: deployments, history, remote data)
	$(COMPOSE) down

.PHONY: deploy
deploy: env-check ## Re-register the deployments from prefect.yaml on main in the stack's Git server
	$(COMPOSE) run --rm deploy

.PHONY: logs
logs: env-check ## Follow the stack's logs
	$(COMPOSE) logs -f --tail 100

.PHONY: bench
bench: setup ## Measure the bundle (about an hour; needs Docker); writes docs/benchmarks.md
	$(PY) -m bench

.PHONY: bench-smoke
bench-smoke: setup ## The benchmark with tiny sizes (minutes); report in bench/out/smoke/
	$(PY) -m bench --smoke

.PHONY: lint
lint: setup ## Lint and check formatting (ruff)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: format
format: setup ## Format the code (ruff)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: lock
lock: setup ## Re-resolve requirements*.lock from pyproject.toml, and the MLflow server's lock
	$(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		-c requirements.lock -o requirements-dev.lock
	$(VENV)/bin/uv pip compile docker/mlflow/requirements.in --universal --python-version 3.11 \
		-o docker/mlflow/requirements.lock

.PHONY: clean
clean: ## Remove pipeline outputs and caches (not the venv, not the DVC remote)
	rm -rf data/prepared models reports .pytest_cache .ruff_cache
