"""Settings: read from the environment once, validated as a whole."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from eventfn.core.config import Settings


def test_defaults_serve_on_8080_with_the_streamlit_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing set, the function listens on 8080 and allows the Streamlit dev origin."""
    for name in ("PORT", "CORS_ORIGINS", "API_KEYS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.port == 8080
    assert settings.cors_origins == ["http://localhost:8501"]
    assert settings.api_keys == []


def test_environment_variables_are_read_case_insensitively(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PORT, EVENT_SOURCE and comma-separated lists come from the environment."""
    monkeypatch.setenv("PORT", "9090")
    monkeypatch.setenv("event_source", "/elsewhere")
    monkeypatch.setenv("API_KEYS", " a , b,,c ")
    settings = Settings()
    assert (settings.port, settings.event_source) == (9090, "/elsewhere")
    assert settings.api_keys == ["a", "b", "c"]


def test_a_lease_a_slow_renewal_cannot_keep_is_refused() -> None:
    """With Redis, a renewal taking the whole timeout must land before the lease ends."""
    with pytest.raises(ValidationError, match="DEDUPE_LEASE_SECONDS"):
        Settings(
            redis_url="redis://127.0.0.1:6379/0", redis_timeout_seconds=2, dedupe_lease_seconds=3
        )


@pytest.mark.parametrize("port", ["0", "70000", "http"])
def test_an_invalid_port_is_refused(monkeypatch: pytest.MonkeyPatch, port: str) -> None:
    """PORT must be a TCP port number."""
    monkeypatch.setenv("PORT", port)
    with pytest.raises(ValidationError):
        Settings()
