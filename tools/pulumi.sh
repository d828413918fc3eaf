#!/usr/bin/env bash
# The real deploy path: `make up STACK=<env>` / `make preview STACK=<env>`.
# Selects (or creates) the stack and runs the Pulumi CLI with the project's virtualenv.
set -euo pipefail
stack="${STACK:?set STACK=local|staging|prod}"
cd "$(dirname "$0")/.."

if ! command -v pulumi >/dev/null 2>&1; then
  cat >&2 <<'MSG'
pulumi CLI not found. Install it (https://www.pulumi.com/docs/install/), e.g.
  curl -fsSL https://get.pulumi.com | sh      # then add ~/.pulumi/bin to PATH
and run this again. `make render` needs no CLI: it evaluates the program offline.
MSG
  exit 127
fi

# `local` defaults to a file backend in the repo and a passphrase secrets provider, so it
# needs no account; staging/prod use whatever backend `pulumi login` points at (CI sets it).
if [ "$stack" = local ] && [ -z "${PULUMI_BACKEND_URL:-}" ]; then
  mkdir -p .pulumi-state
  export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
  export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-}"
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
pulumi stack select --create "${create_args[@]}" "$stack"
exec pulumi "$1" --stack "$stack" "${@:2}"
