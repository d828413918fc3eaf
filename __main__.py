"""Pulumi entry point: settings for the current stack -> one IntegrationEnvironment -> outputs."""

from pathlib import Path

import pulumi

from components.integration_environment import (
    IntegrationEnvironment,
    IntegrationEnvironmentArgs,
)
from config.loading import load_settings_from_pulumi

settings = load_settings_from_pulumi(Path(__file__).resolve().parent)
environment = IntegrationEnvironment("integration-tests", IntegrationEnvironmentArgs(settings))
for key, value in environment.outputs.items():
    pulumi.export(key, value)
