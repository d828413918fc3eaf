#!/bin/sh
# The one entrypoint of the local suite image (the catalog's `entrypoint`): a pytest suite that
# writes its JUnit where the service's runner would -- pytest's --junitxml (PYTEST_ADDOPTS, set by the
# chart), gotestsum's GOTESTSUM_JUNITFILE, jest's JEST_JUNIT_OUTPUT_DIR/NAME -- so every catalog
# service can run it. What it checks: suite_checks.py.
set -u
junit="${INTEGRATION_TEST_JUNIT_PATH:-/tmp/junit.xml}"
if [ -n "${GOTESTSUM_JUNITFILE:-}" ]; then
  junit="$GOTESTSUM_JUNITFILE"
elif [ -n "${JEST_JUNIT_OUTPUT_DIR:-}" ]; then
  junit="$JEST_JUNIT_OUTPUT_DIR/${JEST_JUNIT_OUTPUT_NAME:-junit.xml}"
fi
case "${PYTEST_ADDOPTS:-}" in
  *--junitxml=*) set -- ;;
  *) set -- "--junitxml=$junit" ;;
esac
# -p no:cacheprovider: the root filesystem is read-only. --tb=line, no -l: a failure names the
# variable, never a local value.
exec python3 -m pytest -p no:cacheprovider -q --tb=line -o junit_family=xunit1 "$@" "$(dirname "$0")/suite_checks.py"
