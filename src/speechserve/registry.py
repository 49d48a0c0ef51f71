"""The model registry: what a checkpoint *is* (read from its files and config, never from its path) → its
family, and everything the rest of speechserve needs from that family.

A family lives in one home folder (``models/<family>/``: config, checkpoint mapping, architecture, prompts,
pipeline, engine program) and describes itself with one :class:`Family` entry in its ``family.py``. The
loader, the CLI, ``dev random-checkpoint``, the benchmarks and the server ask this module; none of them
names a family or branches on one. Adding a family = its home folder + one line in :data:`BUILTIN` (or a
:func:`register` call, e.g. from a plug-in or a test).

Shape of an entry::

    Family(name, claims, load, capabilities, license, program, write_random)

- ``claims(fmt, config) -> bool``: does this family read a checkpoint of layout ``fmt`` ("mistral" or
  "hf") whose parsed ``params.json`` / ``config.json`` is ``config``?
- ``load(ctx: LoadContext) -> pipeline``: config parsing, verified weight loading, tokenizer, pipeline.
- ``capabilities``: the tasks its pipeline serves (``speech``, ``transcription``, ``chat``, ``realtime`` …).
- ``program(pipeline, EngineConfig) -> Program``: what the shared engine loop drives (see
  ``engine/program.py``).
- ``write_random(directory, preset, seed) -> Path``: a random-weight checkpoint in the real layout (tests,
  benchmarks, trying the README offline).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from speechserve.errors import CheckpointError

CAPABILITIES = ("speech", "transcription", "translation", "chat", "realtime")
"""Every task a family can declare; the server maps each to its routes."""

BUILTIN = (
    "speechserve.models.voxtral_tts.family",
    "speechserve.models.voxtral_asr.family",
    "speechserve.models.voxtral_realtime.family",
    "speechserve.models.dia.family",
)
"""Modules whose ``FAMILY`` is registered on first use (import order = detection order)."""


@dataclass(frozen=True)
class LoadContext:
    """What a family's loader gets: the resolved directory, its layout, and the caller's choices."""

    layout: Any  # checkpoints.layout.CheckpointLayout
    device: torch.device
    dtype: torch.dtype
    tokenizer: Path | None
    """An explicit tokenizer file (None: the checkpoint's own)."""
    name: str
    """The id the model is known by (hub id or directory name)."""
    codec: str | None = None
    """A separate audio codec to use (local path or hub id), for families that load one (Dia's DAC); None:
    the family's own default."""

    @property
    def root(self) -> Path:
        return self.layout.root

    def tokenizer_file(self, default: str) -> Path:
        """The explicit tokenizer, else ``root/default``; CheckpointError when it does not exist."""
        path = self.tokenizer if self.tokenizer is not None else self.root / default
        if not path.is_file():
            raise CheckpointError(f"no tokenizer: {path} does not exist (pass tokenizer=PATH)")
        return path


@dataclass(frozen=True)
class Family:
    """One model family as the rest of speechserve sees it."""

    name: str
    claims: Callable[[str, dict], bool]
    load: Callable[[LoadContext], Any]
    capabilities: frozenset[str]
    license: str = ""
    program: Callable[[Any, Any], Any] | None = None
    """(pipeline, EngineConfig) → the engine program; None for families that cannot run on the engine yet."""
    write_random: Callable[..., Path] | None = None
    description: str = ""
    isq_keep: tuple[str, ...] = ()
    """Module-name prefixes of ``pipeline.model`` that in-situ quantization leaves in full precision."""
    isq_dynamic: tuple[str, ...] = ()
    """Module-name prefixes whose Linears ``isq=int8`` quantizes with int8 activations too on the CPU (as
    ``int8-dynamic`` does everywhere): where measurement shows the speed matters and the accuracy does not."""

    def __post_init__(self) -> None:
        unknown = set(self.capabilities) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"family {self.name}: unknown capabilities {sorted(unknown)}")


_plugins: dict[str, Family] = {}
_builtins: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add (or replace) a family. Families registered here are asked before the built-in ones, the most
    recent first, so a plug-in (or a test) can claim checkpoints a built-in family would also claim."""
    _plugins.pop(family.name, None)
    _plugins[family.name] = family
    return family


def unregister(name: str) -> None:
    _plugins.pop(name, None)


def families() -> list[Family]:
    """Every family, in the order checkpoints are offered to them."""
    if not _builtins:
        for module in BUILTIN:
            fam = importlib.import_module(module).FAMILY
            _builtins[fam.name] = fam
    return [*reversed(_plugins.values()), *(f for n, f in _builtins.items() if n not in _plugins)]


def get(name: str) -> Family:
    for fam in families():
        if fam.name == name:
            return fam
    raise KeyError(f"no model family {name!r}; known: {', '.join(f.name for f in families())}")


def identify(fmt: str, config: dict) -> Family | None:
    """The family that claims a checkpoint of layout ``fmt`` with this parsed config (None: nobody)."""
    for fam in families():
        if fam.claims(fmt, config):
            return fam
    return None


def family_of(pipeline: Any) -> Family:
    """The family a loaded pipeline belongs to (set by :func:`speechserve.load`)."""
    fam = getattr(pipeline, "family", None)
    if not isinstance(fam, Family):
        raise TypeError(f"{type(pipeline).__name__} was not loaded through the registry")
    return fam
