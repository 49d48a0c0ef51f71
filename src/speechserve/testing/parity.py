"""How every golden test compares our tensors with the reference's: one rule for all families.

Integer tensors must be equal; float tensors must have the same non-finite pattern (masked logits are −inf on
both sides) and max|ours − golden| over the finite entries ≤ ``rel_tol`` · max|golden| (relative to the
tensor's peak, as every golden README states).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import safe_open

REL_TOL = 1e-4
"""The golden READMEs' tolerance for float tensors, relative to the tensor's peak."""


def golden_keys(case_dir: Path) -> list[str]:
    """The tensor names of a case's ``expected.safetensors``, sorted (to parametrize a test by key)."""
    with safe_open(str(Path(case_dir) / "expected.safetensors"), "pt") as f:
        return sorted(f.keys())


def assert_matches_golden(key: str, got: torch.Tensor, want: torch.Tensor, rel_tol: float = REL_TOL) -> None:
    """Raise AssertionError, naming ``key`` and the error, unless ``got`` matches ``want`` by the rule above."""
    assert got.shape == want.shape and got.dtype == want.dtype, (key, got.shape, want.shape, got.dtype)
    if not want.dtype.is_floating_point:
        assert torch.equal(got, want), f"{key}: {(got != want).sum()} entries differ"
        return
    finite = torch.isfinite(want)
    assert torch.equal(finite, torch.isfinite(got)), f"{key}: different non-finite pattern"
    if not finite.any():
        return
    err = (got[finite] - want[finite]).abs().max().item()
    peak = want[finite].abs().max().item()
    assert err <= rel_tol * peak, f"{key}: max error {err:.3g} > {rel_tol} x peak {peak:.3g}"


def assert_rebuilt_file(case_dir: Path, rebuilt_case_dir: Path, relative: str) -> None:
    """A file the test fixtures rebuilt (e.g. a tokenizer) has the size and SHA-256 that ``case.json`` lists."""
    meta = json.loads((Path(case_dir) / "case.json").read_text())["files"][relative]
    data = (Path(rebuilt_case_dir) / relative).read_bytes()
    assert len(data) == meta["bytes"], f"{relative}: {len(data)} bytes, case.json says {meta['bytes']}"
    assert hashlib.sha256(data).hexdigest() == meta["sha256"], f"{relative}: SHA-256 differs from case.json"
