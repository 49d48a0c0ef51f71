"""The layering promised in ARCHITECTURE.md, checked on the source: models never import the engine or the
server, the engine never imports the server, and no module grows past what one person reads comfortably."""

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


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("models", ("speechserve.engine", "speechserve.server", "speechserve.cli")),
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
