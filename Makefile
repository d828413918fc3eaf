# The two commands a new user runs: `make render` (offline, no cluster/Vault/Pulumi CLI) and
# `make test` (the whole suite). `make up STACK=<env>` is the real deploy with the Pulumi CLI.
STACK ?= local
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools/bin

.PHONY: bench-real install lint render diff test up preview destroy bench verify run clean e2e-tools local-env local-env-down e2e

install: $(VENV)/.installed $(TOOLS)/helm

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(TOOLS)/helm: tools/install_helm.py | $(VENV)/.installed
	$(PY) tools/install_helm.py $(TOOLS)

render: install
	$(PY) -m offline.render --stack $(STACK)

# What a change does to every rendered object of STACK (or STACK=all), against BASE.
BASE ?= origin/main
diff: install
	$(PY) -m offline.diff --base $(BASE) --stack $(STACK)

# ruff, mypy (strict on the product code) and the import-linter layering contracts.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest

bench: install
	$(PY) bench/evaluate.py --services 12
	$(PY) bench/evaluate.py --services 100
	$(PY) bench/evaluate.py --services 1000

# The real engine vs the seed's way (bao, kubectl apply, helm upgrade --install), on local-env.
bench-real: install
	$(PY) bench/real.py --services 12 --services 100

preview: install
	STACK=$(STACK) ./tools/stack_env.sh ./tools/pulumi.sh preview --diff

up: install
	STACK=$(STACK) ./tools/stack_env.sh ./tools/pulumi.sh up

destroy: install
	STACK=$(STACK) ./tools/stack_env.sh ./tools/pulumi.sh destroy

# The end-to-end tier: the real Pulumi CLI, kubernetes provider, API server, OpenBao and ESO.
e2e-tools:
	$(PYTHON) tools/e2e/build.py

local-env: install
	$(PY) tools/local_env.py up

local-env-down:
	$(PYTHON) tools/local_env.py down

e2e: install
	$(PY) tools/e2e/run.py

clean:
	rm -rf build .pytest_cache .hypothesis

# A suite on demand (SERVICE=<name>, or every enabled service), its JUnit in build/junit/.
run: install
	STACK=$(STACK) ./tools/stack_env.sh $(PY) -m live.run $(if $(SERVICE),$(SERVICE),--all) --stack $(STACK) $(RUN_ARGS)

verify: install
	STACK=$(STACK) ./tools/stack_env.sh $(PY) -m live.verify --stack $(STACK)
