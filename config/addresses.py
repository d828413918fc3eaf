"""What a server address in a stack file may be, and where a token may be sent: one rule each.

Standard library only.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def token_transport_problem(url: str) -> str | None:
    """Why a token must not be sent to `url`: plain http beyond this machine's loopback."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https":
        return None
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme == "http" and loopback:
        return None
    return f"{url[:200]} is not https: a token is sent in plain text only to this machine's loopback"


def server_url_problem(url: str) -> None:
    """An http(s) server address, nothing more: no credentials, query, fragment or path (it is published
    in the stack outputs and the store, and a token in it would be too)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("not a server URL like https://vault.example:8200 (the port must be 1-65535)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ValueError("not a server URL like https://vault.example:8200")
    if parts.username is not None or parts.password is not None:
        raise ValueError("holds credentials; the address is published in the stack outputs and the store: "
                         "remove user:password@ (the token comes from VAULT_TOKEN)")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ValueError("has a query or fragment; the address is published in the stack outputs: give only "
                         "scheme, host and port (a token comes from VAULT_TOKEN, never the URL)")
    if parts.path not in ("", "/"):
        raise ValueError("has a path: give only scheme, host and port")
    if port == 0:
        raise ValueError("port 0: give a port from 1 to 65535")
