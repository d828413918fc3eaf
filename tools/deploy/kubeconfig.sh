#!/usr/bin/env bash
# Runs a command with CI's cluster credential: KUBECONFIG_DATA (an environment secret holding the
# identity's kubeconfig, docs/ci.md) written to a file of mode 0600 for this command only, handed over
# as KUBECONFIG, and removed when the command ends. Without KUBECONFIG_DATA it runs the command as is.
set -euo pipefail
if [ -z "${KUBECONFIG_DATA:-}" ]; then
  exec "$@"
fi
kubeconfig_file=$(umask 077 && mktemp "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/kubeconfig.XXXXXX")
trap 'rm -f "$kubeconfig_file"' EXIT
printf '%s\n' "$KUBECONFIG_DATA" > "$kubeconfig_file"
unset KUBECONFIG_DATA
KUBECONFIG="$kubeconfig_file" "$@"
