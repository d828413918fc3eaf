#!/usr/bin/env bash
# Runs a command with what `make local-env` recorded (kubeconfig, Vault address and token, Pulumi
# backend and passphrase) when STACK=local and the local environment exists; otherwise as is.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${STACK:-}" = local ] && [ -f build/local-env/env ]; then
  # shellcheck disable=SC1091
  . build/local-env/env
fi
exec ./tools/deploy/kubeconfig.sh "$@"   # and CI's KUBECONFIG_DATA, as a 0600 file for this command
