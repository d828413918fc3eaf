"""A review stack's file, Pulumi.pr-<n>.yaml: written from the template Pulumi.review.yaml (git-ignored),
with its own namespace; its encryption lines kept across rewrites and, as stack tags, across checkouts."""

from __future__ import annotations

from pathlib import Path

import yaml

from config import naming
from config.files import PROJECT_DIR

# The stack file's encryption lines (`secretsprovider`, and the transit-encrypted data key), kept as
# stack tags so a teardown from another checkout (the sweep) decrypts the state without this file.
ENCRYPTION_TAGS = {"secretsprovider": "testinfra:review-secrets-provider",
                   "encryptedkey": "testinfra:review-encrypted-key"}


def stack_file(stack: str, project: Path = PROJECT_DIR) -> Path:
    return project / naming.stack_file(stack)


def write_stack_file(stack: str, *, encryption: dict[str, str] | None = None, project: Path = PROJECT_DIR) -> Path:
    """Pulumi.<stack>.yaml from the template: its own namespace; the rest follows from the name.
    An existing file keeps its encryption lines (the CLI wrote them when the stack was created)."""
    template = yaml.safe_load((project / naming.stack_file(naming.REVIEW_TEMPLATE)).read_text())
    path = stack_file(stack, project)
    kept = dict(encryption or {})
    if path.exists():
        existing = yaml.safe_load(path.read_text()) or {}
        kept.update({k: existing[k] for k in ENCRYPTION_TAGS if existing.get(k)})
    template["config"][f"{naming.PROJECT}:namespace"] = f"integration-tests-{stack}"
    document = {**{k: v for k, v in kept.items() if k in ENCRYPTION_TAGS}, **template}
    # Replaced whole (a new file, then a rename): a CLI reading it meanwhile sees the old or the new one.
    fresh = path.with_name(f".{path.name}.tmp")
    fresh.write_text(f"# Written by `make review-up` from {naming.stack_file(naming.REVIEW_TEMPLATE)}; "
                     "not committed.\n" + yaml.safe_dump(document, sort_keys=False))
    fresh.replace(path)
    return path


def encryption_lines(stack: str, project: Path) -> dict[str, str]:
    existing = yaml.safe_load(stack_file(stack, project).read_text()) or {}
    return {k: str(existing[k]) for k in ENCRYPTION_TAGS if existing.get(k)}
