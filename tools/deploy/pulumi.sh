#!/usr/bin/env bash
# The real deploy path: `make up STACK=<env>` / `make preview STACK=<env>` / `make destroy`, and
# `make init STACK=<env>` (creates a stack, once). Selects the stack -- never creating staging or prod
# on the way -- and runs the Pulumi CLI with the project's virtualenv and the policy pack. For `local` the Makefile runs it through tools/deploy/stack_env.sh, which loads what
# `make local-env` recorded (kubeconfig, Vault address and token, file backend and passphrase, the
# CLI built by `make e2e-tools`); nothing needs exporting.
set -euo pipefail
stack="${STACK-}"
action="$1"
cd "$(dirname "$0")/../.."

case "$stack" in
  '' | *[!a-z0-9-]* | -* | *-)
    echo "STACK=$stack: not a stack name: use local, staging, prod (a Pulumi.<stack>.yaml of this project)" >&2
    exit 2 ;;
esac
if [ "$stack" = review ]; then
  echo "Pulumi.review.yaml is the template of the review stacks, not a stack: use make review-up PR=<n>" >&2
  exit 2
fi
if [ ! -f "Pulumi.$stack.yaml" ]; then
  echo "Pulumi.$stack.yaml: no such stack file: use local, staging or prod, or create the file (README, Configuration)" >&2
  exit 2
fi

if [ "$stack" = local ]; then
  if [ -z "${PULUMI_BACKEND_URL:-}" ] || [ -z "${PULUMI_CONFIG_PASSPHRASE+set}" ]; then
    cat >&2 <<'MSG'
The local stack has no environment: run `make local-env` first (it starts the local control plane,
OpenBao and ESO and records where they are), or point the stack at your own cluster by exporting
PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE, VAULT_TOKEN and setting testinfra:kubeContext.
MSG
    exit 2
  fi
fi

if ! command -v pulumi >/dev/null 2>&1; then
  cat >&2 <<'MSG'
pulumi CLI not found. Install it (https://www.pulumi.com/docs/install/), or build it here from Go
modules with `make e2e-tools` (then `make local-env` puts it on the local stack's PATH).
`make render` needs no CLI: it evaluates the program offline.
MSG
  exit 127
fi

if [ "$action" = init ]; then
  # Creating a stack is its own, deliberate command: `make up`/`preview` never create staging or prod.
  provider=$(awk '$1 == "secretsprovider:" {print $2}' "Pulumi.$stack.yaml")
  exec pulumi stack init "$stack" ${provider:+--secrets-provider "$provider"}
fi

# staging/prod must exist already (selecting changes nothing); checked first, before Vault is asked.
if [ "$stack" != local ] && ! said=$(pulumi stack select "$stack" --non-interactive 2>&1 >/dev/null); then
  cat >&2 <<MSG
Stack $stack cannot be selected in the backend you are logged in to ($(pulumi whoami --verbose 2>/dev/null |
  awk -F': *' '/Backend URL/ {print $2}' || true)): ${said#error: }
Nothing was created. Check \`pulumi login\` (README, Deploy); a stack that does not exist yet is
created once, deliberately, with \`make init STACK=$stack\`.
MSG
  exit 2
fi

if [ -z "${VAULT_TOKEN:-}" ]; then
  echo "VAULT_TOKEN is not set: the Vault provider needs a token for $(grep -E 'vaultAddress' "Pulumi.$stack.yaml" | awk '{print $2}')" >&2
  exit 2
fi

# Vault answers with this token, and every `external` key exists with its properties: checked before
# the CLI starts, so a problem is one message and nothing changes (the program checks again itself).
# The credentials hold the permissions of the identity this action needs (deploy or preview): a missing
# one is one message naming it, not a provider error halfway through.
# (Not for local: the disposable local environment is its own platform team, with its root credentials.)
identity_args=()
if [ "$stack" != local ]; then
  case "$action" in preview) identity_args=(--identity preview) ;; *) identity_args=(--identity deploy) ;; esac
fi
.venv/bin/python -m deploy.verify --stack "$stack" --preflight "${identity_args[@]}" || exit $?

if [ "$stack" = local ]; then
  # The disposable local environment creates its own stack in its own file backend.
  pulumi stack select --create --secrets-provider passphrase "$stack" >/dev/null
fi

policy_args=()
case "$action" in preview|up) policy_args=(--policy-pack policy) ;; esac
exec pulumi "$action" --stack "$stack" "${policy_args[@]}" "${@:2}"
