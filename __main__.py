"""Pulumi entry point: settings for the current stack -> one IntegrationEnvironment -> outputs."""

import atexit
import gc
import os
from pathlib import Path

import pulumi

from components.integration_environment import (
    IntegrationEnvironment,
    IntegrationEnvironmentArgs,
)
from config.loading import load_settings_from_pulumi

# The SDK sends about six debug messages per resource to the engine, each a blocking call on the
# program's event loop: ~0.4 s of CPU in a 12-service preview (docs/benchmarks.md). The CLI shows them
# only with `--debug`; TESTINFRA_SDK_DEBUG=1 keeps them.
if os.environ.get("TESTINFRA_SDK_DEBUG") != "1":
    setattr(pulumi.log, "debug", lambda *args, **kwargs: None)  # noqa: B010

# At exit the interpreter collects the whole heap more than once: ~0.35 s after the program has told
# the engine it is done, which the CLI waits for (docs/benchmarks.md). Freezing the heap first leaves
# those collections nothing to walk; the process ends right after.
atexit.register(gc.freeze)

settings = load_settings_from_pulumi(Path(__file__).resolve().parent)
environment = IntegrationEnvironment("integration-tests", IntegrationEnvironmentArgs(settings))
for key, value in environment.outputs.items():
    pulumi.export(key, value)
