from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from lifecycle.settings import RegistrySettings, Settings


def test_defaults_keep_everything_in_one_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("LIFECYCLE_STATE_DIR", "LIFECYCLE_DB_URL", "LIFECYCLE_REGISTRY_TRACKING_URI"):
        monkeypatch.delenv(key, raising=False)
    settings = Settings()
    assert settings.state_path == tmp_path / ".lifecycle"
    assert settings.database_url == f"sqlite:///{tmp_path / '.lifecycle' / 'lifecycle.db'}"
    assert settings.mlflow_backend_uri == f"sqlite:///{tmp_path / '.lifecycle' / 'mlflow.db'}"
    assert settings.embedded_registry
    assert settings.tracking_uri == "http://127.0.0.1:5000"


def test_every_url_can_be_overridden_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFECYCLE_DB_URL", "postgresql+psycopg://u@db:5432/lifecycle")
    monkeypatch.setenv("LIFECYCLE_REGISTRY_TRACKING_URI", "https://mlflow.example.org/")
    monkeypatch.setenv("LIFECYCLE_REGISTRY_PORT", "5123")
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://u@db:5432/lifecycle"
    assert settings.tracking_uri == "https://mlflow.example.org"
    assert not settings.embedded_registry
    assert settings.registry.port == 5123


def test_bad_values_fail_fast_and_name_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFECYCLE_REGISTRY_PORT", "70000")
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_unknown_sub_setting_is_rejected() -> None:
    with pytest.raises(ValidationError, match="prot"):
        RegistrySettings(prot=1)  # type: ignore[call-arg]
