"""The project's exceptions: bad input, a live environment that cannot be used, a missing tool."""

from __future__ import annotations

import pulumi


class TestinfraError(Exception):
    """Base of every error the project reports as one message, never a traceback."""

    __test__ = False  # not a pytest test class, despite the name


class ConfigError(TestinfraError, pulumi.RunError):
    """Bad catalog.yaml or Pulumi.<stack>.yaml: names the file, the field and the fix.
    A RunError, so the Pulumi CLI prints it without a stack trace."""


class EnvironmentProblem(TestinfraError):
    """A live endpoint (Vault, the API server) is unreachable, refuses us, or holds the wrong state."""


class MissingTool(TestinfraError):
    """A binary a command needs (helm, the Pulumi CLI) is not installed; says how to get it."""
