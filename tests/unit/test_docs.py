"""The documentation: a short README, reference pages that match the code, every setting on the
settings page with its meaning, links that resolve, and no words about how the code was written."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATE = _generator()


def test_the_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


@pytest.mark.parametrize("page", sorted(GENERATE.PAGES))
def test_generated_reference_pages_match_the_code(page: str) -> None:
    render: Callable[[], str] = GENERATE.PAGES[page]
    assert (DOCS / page).read_text() == render(), f"docs/{page} is out of date: run python docs/generate.py"


def test_every_setting_is_on_the_settings_page_with_its_meaning() -> None:
    page = (DOCS / "reference" / "settings.md").read_text()
    classes = GENERATE.settings_classes()
    assert len(classes) >= 8  # the root, registry, database, training, serving, rollout, monitor, retrain, …
    missing = []
    for cls in classes:
        for name, info in cls.model_fields.items():
            if isinstance(info.annotation, type) and issubclass(info.annotation, GENERATE.BaseSettings):
                continue
            row = re.search(rf"^\| `{GENERATE.env_name(cls, name)}` \|[^|]*\| (.+) \|$", page, re.MULTILINE)
            if row is None or not row.group(1).strip():
                missing.append(GENERATE.env_name(cls, name))
    assert not missing, f"settings without a row and meaning on docs/reference/settings.md: {missing}"


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert not broken, f"{page.name} links to missing files: {broken}"


def test_the_site_navigation_lists_every_page() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(nav: object) -> set[str]:
        if isinstance(nav, str):
            return {nav}
        if isinstance(nav, list):
            return set().union(*(pages(item) for item in nav))
        if isinstance(nav, dict):
            return set().union(*(pages(value) for value in nav.values()))
        return set()

    on_disk = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages(config["nav"]) == on_disk


HISTORY = re.compile(r"[Ss]ession [0-9]+|[Ss]ession's|\b[Rr]uns? [A-L]\b|the [a-z]+ issue\b|[Ii]ssue #[0-9]+")


def test_the_project_speaks_of_itself_only() -> None:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    found = []
    for name in files:
        path = ROOT / name
        if (
            path.suffix not in {".py", ".md", ".toml", ".yml", ".yaml", ".txt", ".cfg"}
            and path.name != "Makefile"
        ):
            continue
        if not path.exists():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if HISTORY.search(line) and "HISTORY = re.compile" not in line:
                found.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not found, "words about how the code was written:\n" + "\n".join(found)
