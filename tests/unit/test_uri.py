from __future__ import annotations

import pytest

from registry.uri import InvalidReferenceError, ModelUri, check_alias, check_version, parse_model_uri


def test_parse() -> None:
    assert parse_model_uri("models:/digits/3") == ModelUri("digits", "3", None)
    assert parse_model_uri("models:/digits-teacher@champion") == ModelUri("digits-teacher", None, "champion")
    assert str(ModelUri("m", alias="challenger")) == "models:/m@challenger"


@pytest.mark.parametrize("uri", ["runs:/abc/model", "models:/", "models:/m@", "models:/m/x", "models:/m/1/2"])
def test_bad_uris(uri: str) -> None:
    with pytest.raises(InvalidReferenceError, match="not a model URI"):
        parse_model_uri(uri)


@pytest.mark.parametrize("alias", ["latest", "v3", "with space", "", "a/b"])
def test_bad_aliases(alias: str) -> None:
    with pytest.raises(InvalidReferenceError, match="alias"):
        check_alias(alias)


@pytest.mark.parametrize("version", ["0", "-1", "one", "1.5"])
def test_bad_versions(version: str) -> None:
    with pytest.raises(InvalidReferenceError, match="positive integers"):
        check_version(version)
