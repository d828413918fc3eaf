"""The docs a newcomer reads: the README stays a user's page (at most 300 lines) and every relative
link in the README, CONTRIBUTING, SECURITY and docs/ points at a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR

PAGES = [PROJECT_DIR / "README.md", PROJECT_DIR / "CONTRIBUTING.md", PROJECT_DIR / "SECURITY.md",
         *sorted((PROJECT_DIR / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_readme_is_at_most_300_lines() -> None:
    assert len((PROJECT_DIR / "README.md").read_text().splitlines()) <= 300


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    broken = [target for target in LINK.findall(page.read_text())
              if "://" not in target and not (page.parent / target).exists()]
    assert not broken, broken
