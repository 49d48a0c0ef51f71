"""Test support for the command line: the one shape every usage error must have."""

from __future__ import annotations

from typing import Any


def one_error_line(capsys: Any, argv: list[str]) -> str:
    """Run ``speechserve`` with ``argv`` (pytest's ``capsys`` captures it): it must exit 2 with exactly one
    ``speechserve: error:`` line on stderr and no traceback; returns that line."""
    from speechserve.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("speechserve: error: ")
    return str(err)
