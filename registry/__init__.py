"""The model registry adapter: the ``ModelRegistry`` interface (``registry.abc``), MLflow
(``registry.mlflow``, the only module that talks to an MLflow server through ``mlflow``; also
``registry.logged`` for reading MLflow-logged models), an in-memory fake, the embedded server
process and webhook signatures. Imports only the spine."""

from __future__ import annotations

from registry.abc import ModelRegistry, ModelVersion
from registry.uri import ModelUri, parse_model_uri

__all__ = ["ModelRegistry", "ModelUri", "ModelVersion", "parse_model_uri"]
