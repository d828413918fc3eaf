#!/usr/bin/env bash
# The real deploy path: `make up STACK=<env>` / `make preview STACK=<env>` / `make destroy`.
# Selects (or creates) the stack and runs the Pulumi CLI with the project's virtualenv and the
# policy pack. For `local` the Makefile runs it through tools/stack_env.sh, which loads what
# `make local-env` recorded (kubeconfig, Vault address and token, file backend and passphrase, the
# CLI built by `make e2e-tools`); nothing needs exporting.
set -euo pipefail
stack="${STACK:?set STACK=local|staging|prod}"
action="$1"
cd "$(dirname "$0")/.."

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

if [ -z "${VAULT_TOKEN:-}" ]; then
  echo "VAULT_TOKEN is not set: the Vault provider needs a token for $(grep -E 'vaultAddress' "Pulumi.$stack.yaml" | awk '{print $2}')" >&2
  exit 2
fi

# The SDK reports an absent or incomplete `external` key in the Vault provider's words; say
# which key, file and field first, and change nothing.
.venv/bin/python -m live.verify --stack "$stack" --preflight || exit $?

create_args=()
[ "$stack" = local ] && create_args=(--secrets-provider passphrase)
pulumi stack select --create "${create_args[@]}" "$stack" >/dev/null
policy_args=()
case "$action" in preview|up) policy_args=(--policy-pack policy) ;; esac
exec pulumi "$action" --stack "$stack" "${policy_args[@]}" "${@:2}"
