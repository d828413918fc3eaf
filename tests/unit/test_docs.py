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


@pytest.mark.parametrize("role", ["deploy", "preview"])
def test_what_docs_identities_says_each_identity_reads_matches_its_grants(role: str) -> None:
    """docs/identities.md once said no identity could read an `external` key's value, while the deploy
    identity reads every Secret ESO writes in its namespace. The claim follows the grant."""
    from config.identities import identity
    from tests.conftest import fixture_settings

    grants = identity(fixture_settings("staging"), role).kube
    reads_secrets = any("secrets" in g.resources and "get" in g.verbs for g in grants)
    page = " ".join((PROJECT_DIR / "docs" / "identities.md").read_text().split())
    claim = {"deploy": "The deploy identity can read the Secrets ESO writes in its namespace",
             "preview": "The preview identity holds no Secret"}[role]
    assert reads_secrets is (role == "deploy")
    assert claim in page


def test_the_docs_index_names_every_page_of_docs() -> None:
    index = (PROJECT_DIR / "docs" / "README.md").read_text()
    pages = sorted(p.name for p in (PROJECT_DIR / "docs").glob("*.md") if p.name != "README.md")
    assert [p for p in pages if f"({p})" not in index] == []


def test_every_readme_section_a_message_points_at_exists() -> None:
    """Messages say "see README, <section>": each such section is a heading of the README."""
    import subprocess

    sections = {line[3:].strip() for line in (PROJECT_DIR / "README.md").read_text().splitlines()
                if line.startswith("## ")}
    cited = set(re.findall(r"README, ([A-Z][a-z]+)", subprocess.run(
        ["git", "grep", "-h", "README, ", "--", "*.py", "*.sh"], cwd=PROJECT_DIR, capture_output=True,
        text=True, check=False).stdout))
    assert cited and cited <= sections, cited - sections
