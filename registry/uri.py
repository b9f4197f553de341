"""``models:/name/version`` and ``models:/name@alias`` references."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lifecycle.errors import LifecycleError

_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w\-]+))$")
# MLflow's own rule: letters, digits, '_' and '-'; not 'latest' and not shaped like a version ('v12').
_ALIAS = re.compile(r"^[\w\-]{1,255}$")
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


class InvalidReferenceError(LifecycleError, ValueError):
    """A model URI, alias or version string is malformed."""


@dataclass(frozen=True)
class ModelUri:
    name: str
    version: str | None = None
    alias: str | None = None

    def __str__(self) -> str:
        return f"models:/{self.name}/{self.version}" if self.version else f"models:/{self.name}@{self.alias}"


def parse_model_uri(uri: str) -> ModelUri:
    match = _URI.match(uri.strip())
    if match is None:
        raise InvalidReferenceError(
            f"{uri!r} is not a model URI; use models:/NAME/VERSION or models:/NAME@ALIAS"
        )
    return ModelUri(match["name"], match["version"], match["alias"])


def check_alias(alias: str) -> str:
    if not _ALIAS.match(alias) or _RESERVED_ALIAS.match(alias):
        raise InvalidReferenceError(
            f"alias {alias!r} is invalid: use letters, digits, '_' or '-', and not 'latest' or 'v<number>'"
        )
    return alias


def check_version(version: str | int) -> str:
    text = str(version)
    if not text.isdigit() or int(text) < 1:
        raise InvalidReferenceError(f"version {version!r} is invalid: versions are positive integers")
    return text
