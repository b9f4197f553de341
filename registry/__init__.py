"""Everything that talks to the model registry. Only ``registry.mlflow`` imports ``mlflow``."""

from __future__ import annotations

from registry.abc import ModelRegistry, ModelVersion
from registry.uri import ModelUri, parse_model_uri

__all__ = ["ModelRegistry", "ModelUri", "ModelVersion", "parse_model_uri"]
