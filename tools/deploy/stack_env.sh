#!/usr/bin/env bash
# Runs a command with what `make local-env` recorded (kubeconfig, Vault address and token, Pulumi
# backend and passphrase) when STACK is a local environment's stack and that environment exists:
# STACK=local the default one (build/local-env), STACK=local-<name> the one `make local-env NAME=<name>`
# started (build/local-envs/<name>); with LOGIN=deploy|preview, with what `make login` exchanged the
# job's OIDC token for; otherwise as is.
set -euo pipefail
cd "$(dirname "$0")/../.."
recorded=""
case "${STACK:-}" in
  local) recorded=build/local-env/env ;;
  local-*) printf '%s' "$STACK" | grep -Eq '^local-[a-z0-9]([-a-z0-9]{0,12}[a-z0-9])?$' &&
    recorded="build/local-envs/${STACK#local-}/env" ;;
esac
if [ -n "$recorded" ] && [ -f "$recorded" ]; then
  # shellcheck disable=SC1090
  . "$recorded"
fi
case "${LOGIN:-}" in
  "") ;;
  deploy | preview)
    exchanged="build/login/${STACK:-}-${LOGIN}/env"
    if ! printf '%s' "${STACK:-}" | grep -Eq '^[a-z0-9-]{1,20}$' || [ ! -f "$exchanged" ]; then
      echo "LOGIN=$LOGIN: no credentials of STACK='${STACK:-}' from make login ($exchanged): run make login STACK=<stack> ROLE=$LOGIN first" >&2
      exit 2
    fi
    # shellcheck disable=SC1090
    . "$exchanged"
    export VAULT_TOKEN KUBECONFIG
    ;;
  *) echo "LOGIN='$LOGIN': deploy or preview" >&2; exit 2 ;;
esac
exec ./tools/deploy/kubeconfig.sh "$@"   # and CI's KUBECONFIG_DATA, as a 0600 file for this command
