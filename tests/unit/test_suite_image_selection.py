"""A stack's `suiteImage`: one digest-pinned image for every suite, below a service's own override."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from tests.conftest import settings_for

DIGEST = "sha256:" + "ab" * 32
SUITE = {"repository": "testinfra.invalid/integration-suite", "digest": DIGEST}


def test_every_service_runs_the_suite_image_pinned_by_digest() -> None:
    settings = settings_for("staging", suiteImage=SUITE)
    assert settings.services
    for service in settings.services:
        assert service.image == f"testinfra.invalid/integration-suite@{DIGEST}"
        assert service.image_pull_policy == "IfNotPresent"


def test_a_service_override_still_wins_over_the_suite_image() -> None:
    name = settings_for("staging").services[0].name
    settings = settings_for("staging", suiteImage=SUITE,
                            serviceOverrides={name: {"image": "ghcr.io/example/own", "imageTag": "v2"}})
    chosen = {s.name: s.image for s in settings.services}
    assert chosen[name] == "ghcr.io/example/own:v2"
    assert all(image.endswith(DIGEST) for n, image in chosen.items() if n != name)


def test_without_a_suite_image_each_service_keeps_its_catalog_image() -> None:
    for service in settings_for("staging").services:
        assert not service.image_repository.startswith("testinfra.invalid/")


@pytest.mark.parametrize(("value", "field"), [
    ({"repository": "testinfra.invalid/integration-suite"}, "suiteImage.digest"),
    ({"repository": "testinfra.invalid/integration-suite", "digest": "latest"}, "suiteImage.digest"),
    ({"repository": "Not A Repo", "digest": DIGEST}, "suiteImage.repository"),
])
def test_a_suite_image_must_be_pinned_by_digest(value: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError) as exc:
        settings_for("staging", suiteImage=value)
    assert field in str(exc.value)
