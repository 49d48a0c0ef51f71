"""The layering promised in ARCHITECTURE.md, checked on the source: model architecture never imports the
engine or the server (a family's engine-facing files — its program, pipeline and registry entry — import
only the engine), the engine never imports the server, nothing outside a family's home folder imports it
(everyone asks the registry), and no module grows past what one person reads comfortably."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "speechserve"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


ENGINE_FACING = {"family.py", "program.py", "pipeline.py", "sequence.py", "graphs.py", "bench.py"}
"""The files of a family's home folder that talk to the engine; everything else there is architecture."""


def test_model_architecture_never_imports_the_engine() -> None:
    bad = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in sorted((SRC / "models").rglob("*.py"))
        if path.name not in ENGINE_FACING
        for name in _imports(path)
        if name.startswith("speechserve.engine")
    ]
    assert not bad, bad


def test_only_the_registry_and_the_family_itself_import_a_family() -> None:
    families = [p.name for p in (SRC / "models").iterdir() if (p / "family.py").is_file()]
    assert {"voxtral_tts", "voxtral_asr"} <= set(families)
    bad = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in sorted(SRC.rglob("*.py"))
        if path.parts[len(SRC.parts)] not in ("models", "testing")
        for name in _imports(path)
        if any(name.startswith(f"speechserve.models.{fam}") for fam in families)
    ]
    assert not bad, bad


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("models", ("speechserve.server", "speechserve.cli")),
        ("engine", ("speechserve.server", "speechserve.cli")),
        ("checkpoints", ("speechserve.engine", "speechserve.server")),
    ],
)
def test_layers_never_import_upwards(package: str, forbidden: tuple[str, ...]) -> None:
    bad = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in sorted((SRC / package).rglob("*.py"))
        for name in _imports(path)
        if name.startswith(forbidden)
    ]
    assert not bad, bad


def test_no_module_over_500_lines() -> None:
    long = [
        f"{p.relative_to(SRC)}: {n}"
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 500
    ]
    assert not long, long
