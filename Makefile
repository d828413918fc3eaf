# Integration-test infrastructure per environment (Pulumi, Python). `make help` lists the targets.
# The two first commands: `make render` (offline, no cluster/Vault/Pulumi CLI) and `make test`.
STACK ?= local
BASE ?= origin/main
# A value given on the command line or in the environment is text, never make code: `$(value ...)` takes
# it unexpanded. (A command-line `STACK='$(shell ...)'` is otherwise expanded by make itself -- even
# under `make -n` -- before any quoting below could help.)
override STACK := $(value STACK)
override BASE := $(value BASE)
override SERVICE := $(value SERVICE)
override RUN_ID := $(value RUN_ID)
override CALLER := $(value CALLER)
override RERUN := $(value RERUN)
override PR := $(value PR)
override CLOSED := $(value CLOSED)
override CLOSED_FILE := $(value CLOSED_FILE)
override TTL_HOURS := $(value TTL_HOURS)
override KEY := $(value KEY)
override ROLE := $(value ROLE)
override LOGIN := $(value LOGIN)
override RECORD := $(value RECORD)
override BASELINE := $(value BASELINE)
override LOCK_MINUTES := $(value LOCK_MINUTES)
override OVERLAP := $(value OVERLAP)
override RETRIES := $(value RETRIES)
override INSTALL_JOBS := $(value INSTALL_JOBS)
override NAME := $(value NAME)
PYTHON ?= python3
# Also text to make (a command the user chooses, run by the shell as they wrote it), and CI's variables.
override PYTHON := $(value PYTHON)
override GITHUB_RUN_ID := $(value GITHUB_RUN_ID)
override GITHUB_SERVER_URL := $(value GITHUB_SERVER_URL)
override GITHUB_REPOSITORY := $(value GITHUB_REPOSITORY)
PY := .venv/bin/python
TOOLS := .tools/bin
# Every variable a user sets reaches a command as one single-quoted word: a value is never shell code.
q = '$(subst ','\'',$(1))'
# Which local environment a tools/localenv command works on (tools/localenv/layout.py; default local).
LOCAL_ENV = TESTINFRA_LOCAL_ENV=$(call q,$(NAME))
STACK_ENV = STACK=$(call q,$(STACK)) LOGIN=$(call q,$(LOGIN)) ./tools/deploy/stack_env.sh

.DEFAULT_GOAL := help
.PHONY: help runtime deploy-runtime install lock render schema identities login review-grant review-revoke review-login review-up review-down review-sweep review-comment closed-prs diff lint test kube-score actionlint shellcheck diff-comment \
	preview-comment pr-comment outputs init preview up destroy verify drift run report rotate recover e2e-tools local-env \
	local-env-down local-envs local-images node-packages rehearse e2e bench bench-real clean distclean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z0-9-]*:.*## / {printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: STACK=local|staging|prod (default local), SERVICE=<name>, BASE=<git ref>, PYTHON=python3.x"
	@echo "  [starts ...]: runs servers on this machine (stopped by make local-env-down); the rest are offline"
	@echo "  or reach only the stack's own cluster, Vault and backend"

runtime: ## the program's runtime in .venv (what `make render` and `pulumi up` need)
	@$(PYTHON) -m tools.setup.venv requirements.txt
	@$(PY) -m tools.setup.helm $(TOOLS)

deploy-runtime: runtime ## what `make preview|up|destroy|verify|run` need: the runtime, the preflight, the policy pack
	@$(PYTHON) -m tools.setup.venv requirements-deploy.txt

install: runtime ## everything `make test` needs: linters, OpenBao, scanners, test tools
	@$(PYTHON) -m tools.setup.venv requirements-dev.txt

LOCK = .venv/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes --no-header
lock: install ## re-resolve requirements*.lock from the requirements*.txt pins (one resolution, hashes for every platform)
	$(LOCK) requirements-dev.txt -o requirements-dev.lock
	$(LOCK) -c requirements-dev.lock requirements-deploy.txt -o requirements-deploy.lock
	$(LOCK) -c requirements-dev.lock requirements.txt -o requirements.lock

render: runtime ## offline render of STACK into build/render/STACK/
	$(PY) -m offline.render --stack=$(call q,$(STACK))

review-up: deploy-runtime ## a review environment for pull request PR: stack pr-PR from Pulumi.review.yaml, deployed (TTL_HOURS, default 72)
	./tools/deploy/kubeconfig.sh $(PY) -m deploy.review up $(call q,$(PR)) --ttl-hours=$(call q,$(or $(TTL_HOURS),72))

login: deploy-runtime ## a CI job's GitHub OIDC token exchanged for STACK's ROLE=deploy|preview identity in build/login/STACK-ROLE/ (then LOGIN=ROLE)
	./tools/deploy/kubeconfig.sh $(PY) -m deploy.oidc_login login --stack=$(call q,$(STACK)) --role=$(call q,$(or $(ROLE),deploy))

review-grant: deploy-runtime ## (platform, base branch only) PR's namespace, Role for its OIDC user, Vault policy, JWT role, ESO role, transit key
	./tools/deploy/kubeconfig.sh $(PY) -m deploy.review_access grant $(call q,$(PR))

review-revoke: deploy-runtime ## (platform) revoke PR's tokens by accessor, then remove everything review-grant made
	./tools/deploy/kubeconfig.sh $(PY) -m deploy.review_access revoke $(call q,$(PR))

review-login: deploy-runtime ## (the review job) exchange PR's GitHub OIDC token for its Vault token and kubeconfig in build/review/pr-PR/
	$(PY) -m deploy.review_access login $(call q,$(PR))

review-down: deploy-runtime ## remove pull request PR's review environment: destroy, its Vault keys, then the stack
	./tools/deploy/kubeconfig.sh $(PY) -m deploy.review down $(call q,$(PR)) \
	  $(if $(LOCK_MINUTES),--lock-minutes=$(call q,$(LOCK_MINUTES)))

review-sweep: deploy-runtime ## remove every review environment past its expiry or whose PR is closed (CLOSED="3 5" or CLOSED_FILE=); a lock younger than LOCK_MINUTES (45) is left
	./tools/deploy/kubeconfig.sh $(PY) -m deploy.review sweep --closed=$(call q,$(CLOSED)) $(if $(CLOSED_FILE),--closed-file=$(call q,$(CLOSED_FILE))) \
	  $(if $(LOCK_MINUTES),--lock-minutes=$(call q,$(LOCK_MINUTES)))

review-comment: deploy-runtime ## PR's review comment in build/pr-comment.md from build/junit/, pr-PR's outputs and staging's (BASELINE=, default build/outputs-staging.json)
	$(PY) -m ci.review_comment --pr=$(call q,$(PR)) $(if $(BASELINE),--baseline=$(call q,$(BASELINE))) \
	  $(if $(GITHUB_RUN_ID),--artifacts-url=$(call q,$(GITHUB_SERVER_URL)/$(GITHUB_REPOSITORY)/actions/runs/$(GITHUB_RUN_ID)))

closed-prs: ## the numbers of this repository's closed pull requests in build/closed-prs.txt (gh, GH_TOKEN), for review-sweep
	@mkdir -p build
	gh pr list --state closed --limit 1000 --json number --jq '.[].number' > build/closed-prs.txt

schema: runtime ## schemas/stack-outputs.schema.json from the contract's typed model (config/contract.py)
	$(PY) -m offline.schema

identities: runtime ## the platform team's setup of STACK: deploy/preview Vault policies and RBAC in build/identities/STACK/
	$(PY) -m offline.identities --stack=$(call q,$(STACK))

diff: runtime ## what the working tree changes in every rendered object of STACK (or STACK=all) against BASE
	$(PY) -m offline.diff --base=$(call q,$(BASE)) --stack=$(call q,$(STACK))

E2E_BIN := .tools/e2e/bin
# Build one checker of tools/toolchain/toolchain.toml from its Go module, when a new enough go is there
# (one line saying why not, otherwise: no go, or one older than toolchain.toml's minimum).
go_tool = @why=$$($(PYTHON) -m tools.toolchain.build --go-problem); if [ -z "$$why" ]; then \
	$(PYTHON) -m tools.toolchain.build --only $(1) | tail -1; \
	elif [ -x $(E2E_BIN)/$(1) ]; then echo "$(1): the existing build is used ($$why)"; \
	else echo "$(1): not built ($$why): $(2)"; fi

lint: install actionlint shellcheck ## ruff, mypy (strict), the import contracts, actionlint (with shellcheck) and zizmor over .github/
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/lint-imports
	@if [ -x $(E2E_BIN)/actionlint ]; then PATH="$(CURDIR)/$(TOOLS):$$PATH" $(E2E_BIN)/actionlint -color=false && \
	  echo "actionlint: no finding$$([ -x $(TOOLS)/shellcheck ] && echo ', run: scripts checked by shellcheck')"; \
	else echo "actionlint: not built ($$($(PYTHON) -m tools.toolchain.build --go-problem)): the workflows are checked by zizmor only"; fi
	@if [ -x $(TOOLS)/shellcheck ]; then $(TOOLS)/shellcheck tools/deploy/*.sh .ci/run && echo "shellcheck: no finding"; fi
	.venv/bin/zizmor --offline --no-progress --persona auditor .github/workflows

test: lint kube-score ## the whole fast suite (unit, program under mocks, real helm, OpenBao, schemas, kube-score)
	$(PY) -m pytest

kube-score: ## build kube-score from its Go module (a peer's checks over the rendered stacks), when go is there
	$(call go_tool,kube-score,tests/integration/test_kube_score.py will say it did not run)

# The runner's own shellcheck when it is 0.8 or newer; else Debian's package, unpacked into .tools
# (nothing is installed on the machine), where apt-get is there.
SHELLCHECK_DEB := shellcheck=0.9.0-1
SHELLCHECK_MIN := 0.8.0
shellcheck: ## shellcheck (the runner's, 0.8+, or Debian's package) for make lint (actionlint runs it over the workflows' scripts)
	@own=$$(command -v shellcheck 2>/dev/null || true); \
	if [ -x $(TOOLS)/shellcheck ]; then :; \
	elif [ -n "$$own" ] && v=$$("$$own" --version | awk '/^version/ {print $$2}') && \
	  [ "$$(printf '%s\n%s\n' "$(SHELLCHECK_MIN)" "$$v" | sort -V | head -1)" = "$(SHELLCHECK_MIN)" ]; then \
	  mkdir -p $(TOOLS) && ln -sf "$$own" $(TOOLS)/shellcheck && echo "shellcheck: $$v from PATH ($$own)"; \
	elif command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then \
	  rm -rf .tools/deb && mkdir -p .tools/deb $(TOOLS) && (cd .tools/deb && apt-get -o APT::Sandbox::User=root download -qq $(SHELLCHECK_DEB) && \
	  dpkg -x shellcheck_*.deb root) && ln -sf "$(CURDIR)/.tools/deb/root/usr/bin/shellcheck" $(TOOLS)/shellcheck && \
	  echo "shellcheck: $$($(TOOLS)/shellcheck --version | awk '/^version/ {print $$2}') from Debian's package"; \
	else echo "shellcheck: no apt-get here: actionlint runs without it, and make lint skips the shell scripts"; fi

actionlint: ## build actionlint from its Go module (the workflows' linter in make lint), when go is there
	$(call go_tool,actionlint,make lint checks the workflows with zizmor only)

# CI's steps, so a laptop runs what a workflow runs (.github/workflows only wires credentials).
diff-comment: runtime ## the render diff of every stack against BASE in build/pr-comment.md (and CI's job summary)
	@mkdir -p build
	$(PY) -m offline.diff --base=$(call q,$(BASE)) --stack=all > build/render-diff.txt
	@$(PY) -m ci.output_comment --kind render-diff --title 'Rendered objects: what this change does (`make diff`)' \
	  --input build/render-diff.txt --fence diff --keep head
	@if [ -n "$${GITHUB_STEP_SUMMARY:-}" ]; then cat build/pr-comment.md >> "$$GITHUB_STEP_SUMMARY"; fi

preview-comment: deploy-runtime ## make preview of STACK, its output kept as a pull-request comment in build/pr-comment.md
	@mkdir -p build
	@$(STACK_ENV) $(PY) -m deploy.stack preview --diff --color never > build/preview.txt 2>&1; status=$$?; \
	  cat build/preview.txt; \
	  $(PY) -m ci.output_comment --kind $(call q,preview-$(STACK)) --title $(call q,pulumi preview $(STACK)) \
	    --input build/preview.txt --keep tail; \
	  exit $$status

pr-comment: ## post build/pr-comment.md on pull request PR, editing by id this kind's earlier comment (GH_TOKEN)
	$(PYTHON) -m ci.pr_comment --pr=$(call q,$(PR)) --body build/pr-comment.md

outputs: deploy-runtime ## STACK's outputs (pulumi stack output --json) into build/outputs-STACK.json, checked against the schema
	$(PY) -m deploy.outputs --stack=$(call q,$(STACK))

init: deploy-runtime ## create STACK in the backend you are logged in to, once (staging, prod)
	$(STACK_ENV) $(PY) -m deploy.stack init

preview: deploy-runtime ## pulumi preview --diff of STACK (Vault preflight and policy pack first)
	$(STACK_ENV) $(PY) -m deploy.stack preview --diff

up: deploy-runtime ## pulumi up of STACK (Vault preflight and policy pack first)
	$(STACK_ENV) $(PY) -m deploy.stack up

destroy: deploy-runtime ## pulumi destroy of STACK (keeps the Vault keys it wrote)
	$(STACK_ENV) $(PY) -m deploy.stack destroy

verify: deploy-runtime ## check a deployed STACK: Vault keys, ExternalSecrets, Secrets, releases
	$(STACK_ENV) $(PY) -m deploy.verify --stack=$(call q,$(STACK))

drift: deploy-runtime ## what drifted in STACK from what it declares, read only (the engine's refresh preview and the rest): build/drift/STACK.xml|.md|.json (and CI's job summary)
	@$(STACK_ENV) $(PY) -m deploy.drift --stack=$(call q,$(STACK)); status=$$?; \
	  if [ -n "$${GITHUB_STEP_SUMMARY:-}" ] && [ -f build/drift/$(call q,$(STACK)).md ]; then \
	    cat build/drift/$(call q,$(STACK)).md >> "$$GITHUB_STEP_SUMMARY"; fi; exit $$status

# A suite on demand (SERVICE=<name>, or every enabled service), its JUnit and run manifest in build/junit/.
# RUN_ID/CALLER label the Job; RERUN=1 re-runs a failed install-time Job; RERUN=<run id or manifest>
# replays a recorded run with the image digest it ran; RETRIES=<0..3> infrastructure retries (default 1);
# INSTALL_JOBS=1 collects the install-time Jobs `make up` ran instead of starting runs.
run: deploy-runtime ## run SERVICE's suite (or every suite) on demand: readiness gate, JUnit and provenance in build/junit/
	$(STACK_ENV) $(PY) -m runs.run --stack=$(call q,$(STACK)) \
		$(if $(RUN_ID),--run-id=$(call q,$(RUN_ID))) $(if $(CALLER),--caller=$(call q,$(CALLER))) \
		$(if $(RETRIES),--infra-retries=$(call q,$(RETRIES))) $(if $(INSTALL_JOBS),--install-jobs) \
		$(if $(RERUN),$(if $(filter 1,$(RERUN)),--rerun,--replay=$(call q,$(RERUN)))) \
		$(if $(SERVICE),-- $(call q,$(SERVICE)),--all)

report: deploy-runtime ## the run-history page build/runs/index.html from the runs `make run` kept (grid, flaky rate, phases, provenance)
	$(PY) -m runs.report

rotate: deploy-runtime ## the rotation drill of generated KEY in STACK: new version, consumers rerun on it, old one destroyed after OVERLAP s
	$(STACK_ENV) $(PY) -m runs.rotate --stack=$(call q,$(STACK)) --key=$(call q,$(KEY)) \
		$(if $(OVERLAP),--overlap-seconds=$(call q,$(OVERLAP)))

recover: deploy-runtime ## after a killed up/destroy of STACK: release the lock, adopt installed releases, settle what was in flight
	$(STACK_ENV) $(PY) -m deploy.recover --stack=$(call q,$(STACK))

e2e-tools: ## build the end-to-end toolchain from Go modules (Pulumi CLI, providers, API server, etcd, ESO)
	$(PYTHON) -m tools.toolchain.build

node-packages: ## the local node's Debian packages (containerd, runc, CNI plugins, socat), when missing
	@$(PYTHON) -m tools.localenv.node_packages

local-images: install ## build the local node's images (pause, suite) reproducibly into build/images
	$(PY) -m tools.localenv.images

local-env: install node-packages ## [starts servers on loopback ports, a node as root] start local environment NAME (default local: STACK=local; another: free ports, STACK=local-NAME)
	$(LOCAL_ENV) $(PY) -m tools.localenv.environment up

local-envs: ## the local environments here: running or not, stack, kube context, ports
	@$(PYTHON) -m tools.localenv.listing

rehearse: install node-packages ## [starts servers on loopback ports, a node as root] STACK=staging|prod for real on a fresh local environment (https Vault, S3 state)
	$(PY) -m tools.localenv.rehearse $(call q,$(STACK))

local-env-down: ## stop local environment NAME (default local) by PID (the standard library only: any python3 will do)
	$(LOCAL_ENV) $(PYTHON) -m tools.localenv.stop

e2e: install node-packages ## [starts servers on loopback ports, a node as root] the end-to-end tier on a fresh local environment (real CLI, API server, ESO, OpenBao)
	$(PY) -m tools.toolchain.e2e

bench: install ## the program under mocks at 12, 100 and 1,000 services (RECORD=1: add the rows to docs/figures.*)
	$(PY) -m bench.evaluate --services 12 $(if $(RECORD),--record)
	$(PY) -m bench.evaluate --services 100 $(if $(RECORD),--record)
	$(PY) -m bench.evaluate --services 1000 $(if $(RECORD),--record)

bench-real: install ## [starts local servers on loopback] the real engine against the plain script, 12 and 100 services, file and S3 state (RECORD=1)
	$(PY) -m bench.real --services 12 --services 100 --backend file --backend s3 --repeat 1 $(if $(RECORD),--record)

clean: ## remove build output and test caches (keeps .venv and .tools)
	rm -rf build .pytest_cache .hypothesis .mypy_cache .ruff_cache

distclean: clean ## also remove .venv and .tools (the next command reinstalls them)
	rm -rf .venv .tools
