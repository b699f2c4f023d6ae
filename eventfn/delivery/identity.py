"""Who the function is to its sink, and whom it trusts: what SinkBinding gives it, read in full.

With Knative's `authentication-oidc` feature, the SinkBinding projects a Secret at `/oidc` whose
key `token` is a JWT for the sink's audience, rotated by the controller before it expires (a
projected volume swaps a symlink: the file's inode changes). Every publish sends it as
`Authorization: Bearer`, re-read only when the file changed.

With `transport-encryption`, K_SINK is `https` and the CA to trust arrives as PEM in `K_CA_CERTS`;
trust bundles are mounted under `/knative-custom-certs`. The publisher trusts the system CAs and
all of these.

Written by hand: httpx reads neither, and no library watches a projected token file.
"""

from __future__ import annotations

import os
import ssl
import time
from pathlib import Path

from eventfn.observability.logs import get_logger

log = get_logger("eventfn.delivery.identity")

# How often the token file is looked at (a stat): the controller rotates it long before expiry.
_CHECK_SECONDS = 1.0


class SinkToken:
    """The bearer token of the function's OIDC identity, from the file SinkBinding mounts."""

    def __init__(self, path: Path, *, expected: bool) -> None:
        self.path = path
        self.expected = expected  # OIDC is on: a missing token is worth a warning
        self.missing = False
        self._token: str | None = None
        self._seen: tuple[int, int, int] | None = None
        self._checked = -_CHECK_SECONDS

    def start(self) -> None:
        """Read the token now; say so, once, if OIDC is expected and there is none."""
        self._checked = -_CHECK_SECONDS
        if self.header() is None and self.expected:
            log.warning(
                "sink_token_missing",
                path=str(self.path),
                detail="OIDC is on but the SinkBinding's token file is absent: publishes go "
                "without a token, and a Broker with authentication-oidc refuses them (401)",
            )

    def header(self) -> str | None:
        """`Bearer <token>`, or None without a token; the file is re-read only when it changed."""
        now = time.monotonic()
        if now - self._checked < _CHECK_SECONDS:
            return self._token
        self._checked = now
        try:
            stat = os.stat(self.path)  # follows the projected volume's symlinks
        except OSError:
            self._token, self._seen, self.missing = None, None, True
            return None
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if seen != self._seen:
            try:
                token = self.path.read_text().strip()
            except OSError:
                token = ""
            self._token = f"Bearer {token}" if token else None
            self._seen = seen
        self.missing = self._token is None
        return self._token


def trust(ca_certs: str | None, bundles: Path | None) -> ssl.SSLContext:
    """The system CAs plus the PEM of `K_CA_CERTS` plus every PEM file under `bundles`.

    A trust bundle is a ConfigMap mounted as a projected volume: one file per key, whatever its
    name, beside the volume's own `..data` links (skipped: they hold the same files again).
    """
    context = ssl.create_default_context()
    if ca_certs and ca_certs.strip():
        context.load_verify_locations(cadata=ca_certs)
    if bundles is not None and bundles.is_dir():
        for path in sorted(bundles.rglob("*")):
            if any(part.startswith("..") for part in path.relative_to(bundles).parts):
                continue
            if not path.is_file():
                continue
            try:
                pem = path.read_text("ascii")
                if "-----BEGIN CERTIFICATE-----" in pem:
                    context.load_verify_locations(cadata=pem)
            except (ssl.SSLError, OSError, UnicodeDecodeError) as exc:
                log.warning("trust_bundle_unreadable", path=str(path), error=str(exc))
    return context
