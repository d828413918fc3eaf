"""Who the suites run as: the shared runner account, and one per service granted RBAC of its own."""

from __future__ import annotations

from dataclasses import dataclass

from config.stack import RbacRule


@dataclass(frozen=True)
class RunnerIdentity:
    """A service account the suites run as, and the Role rules it is granted (none: no Role, no token)."""

    service_account: str
    rules: tuple[RbacRule, ...]
    service: str | None = None  # the one service it belongs to; None for the shared runner account
