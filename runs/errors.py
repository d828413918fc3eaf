"""The error of the commands that run suites: input (outputs, a service name, a manifest) that cannot be
used, said with its fix; `make run` prints it as one line and exits 2."""

from __future__ import annotations

from config.errors import TestinfraError


class RunInputError(TestinfraError):
    """The outputs, the service name, a manifest or the cluster cannot be used; the message says how to fix it."""
