"""`migrate health --url`: ask a running health server's `/health` or `/ready` over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from src.migrate.commands import Probe
from src.migrate.errors import ConfigError


def ask_server(url: str, *, ready: bool, timeout: float) -> Probe:
    """GET {url}/health or {url}/ready; `url` may also name the endpoint itself."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"--url: expected http://host:port of a health server, not {url!r}")
    path = parts.path.rstrip("/")
    for route in ("/health", "/ready"):
        path = path.removesuffix(route)
    endpoint = f"{parts.scheme}://{parts.netloc}{path}{'/ready' if ready else '/health'}"
    try:
        with urllib.request.urlopen(endpoint, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return Probe(False, f"{endpoint}: no answer ({reason})")
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    reasons = body.get("reasons") or ([body["database"]["error"]] if body.get("database", {}).get("error") else [])
    summary = "; ".join(str(r) for r in reasons) or body.get("status") or raw[:200].decode(errors="replace")
    return Probe(status == 200, f"{endpoint}: {status} {summary}", [str(r) for r in reasons])
