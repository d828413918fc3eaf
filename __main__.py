"""Pulumi entry point: settings for the current stack -> one IntegrationEnvironment -> outputs."""

import atexit
import gc
from pathlib import Path

import pulumi

from components.integration_environment import (
    IntegrationEnvironment,
    IntegrationEnvironmentArgs,
)
from config.loading import load_settings_from_pulumi

# At exit the interpreter collects the whole heap more than once: ~0.35 s after the program has told
# the engine it is done, which the CLI waits for (docs/benchmarks.md). Freezing the heap first leaves
# those collections nothing to walk; the process ends right after.
atexit.register(gc.freeze)

settings = load_settings_from_pulumi(Path(__file__).resolve().parent)
environment = IntegrationEnvironment("integration-tests", IntegrationEnvironmentArgs(settings))
for key, value in environment.outputs.items():
    pulumi.export(key, value)
