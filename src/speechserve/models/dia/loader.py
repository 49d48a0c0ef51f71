"""Load Dia and its DAC codec, verified name by name, from whichever layout the files are in.

Dia (detected from the tensor names, never the path):

- **transformers layout** (``model.encoder.…``, top-level ``logits_dense.weight``; one file or shards): the
  names of :class:`~speechserve.models.dia.model.Dia`, copied as they are;
- **nari-labs layout** (``encoder.…``/``decoder.…``, JAX-style ``DenseGeneral`` kernels [in…, out…]): every
  kernel becomes a Linear weight ``K.reshape(prod(in), prod(out)).T``, ``mlp.wi_fused``/``mlp.wo`` →
  ``mlp.gate_up_proj``/``mlp.down_proj``, the 9 channel embeddings are stacked into one table and
  ``decoder.logits_dense`` [H, 9, 1028] becomes ``logits_dense`` [9·1028, H].

DAC: the descript ``weights.pth`` (``{"state_dict", "metadata": {"kwargs"}}``, read with
``weights_only=True``) or transformers' ``DacModel`` (``config.json`` + ``model.safetensors``). Weight norm
(``weight_g``/``weight_v`` or ``parametrizations.weight.original0/1``) is folded at load: W = g·v/‖v‖.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import torch

from speechserve.checkpoints.resolve import resolve_model_dir
from speechserve.checkpoints.safetensors_io import describe_mismatch, iter_tensors, list_tensors
from speechserve.errors import CheckpointError, ModelNotFound
from speechserve.models.dia.config import DacConfig, DiaConfig, parse_descript_kwargs, parse_hf_dac_config
from speechserve.models.dia.dac import DAC
from speechserve.models.dia.model import Dia

NARI, HF = "nari", "hf"
DESCRIPT_WEIGHTS = "weights.pth"


# ---- Dia ----------------------------------------------------------------------------------------------------
def weight_files(root: Path) -> list[Path]:
    """The safetensors files of a checkpoint directory (the shards named by an index, when there is one)."""
    index = root / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        return [root / s for s in shards]
    files = sorted(root.glob("model*.safetensors"))
    if not files:
        raise CheckpointError(f"{root} has no model*.safetensors")
    return files


def detect_dia_layout(names: list[str]) -> str:
    """ "hf" (transformers names) or "nari" (nari-labs names), from the tensor names."""
    if any(n.startswith("model.") or n == "logits_dense.weight" for n in names):
        return HF
    if any(n.startswith(("encoder.", "decoder.")) for n in names):
        return NARI
    raise CheckpointError(
        f"tensor names {sorted(names)[:5]} are neither the nari-labs nor the transformers Dia layout"
    )


def _nari_linear(kernel: torch.Tensor, n_in: int) -> torch.Tensor:
    """DenseGeneral kernel [in…(n_in axes), out…] → Linear weight [prod(out), prod(in)]."""
    in_size = int(torch.tensor(kernel.shape[:n_in]).prod())
    return kernel.reshape(in_size, -1).t().contiguous()


_NARI_RENAME = ((".mlp.wi_fused.", ".mlp.gate_up_proj."), (".mlp.wo.", ".mlp.down_proj."))


def _from_nari(name: str, tensor: torch.Tensor) -> tuple[str, torch.Tensor] | None:
    """One nari tensor → (transformers name, tensor); None for the channel embeddings (stacked apart)."""
    if re.fullmatch(r"decoder\.embeddings\.\d+\.weight", name):
        return None
    if name == "decoder.logits_dense.weight":
        return "logits_dense.weight", _nari_linear(tensor, 1)
    target = "model." + name
    for src, dst in _NARI_RENAME:
        target = target.replace(src, dst)
    if name.endswith("o_proj.weight"):
        return target, _nari_linear(tensor, 2)  # [heads, head_dim, out]
    if "_proj." in name or ".mlp." in name:
        return target, _nari_linear(tensor, 1)
    return target, tensor


def _iter_checkpoint(files: list[Path]) -> Iterator[tuple[str, torch.Tensor]]:
    for path in files:
        yield from iter_tensors(path)


def _nari_state(files: list[Path], n_channels: int) -> Iterator[tuple[str, torch.Tensor]]:
    embeddings: dict[int, torch.Tensor] = {}
    for name, tensor in _iter_checkpoint(files):
        mapped = _from_nari(name, tensor)
        if mapped is None:
            embeddings[int(name.split(".")[2])] = tensor
        else:
            yield mapped
    if sorted(embeddings) != list(range(n_channels)):
        raise CheckpointError(f"nari checkpoint has channel embeddings {sorted(embeddings)}, expected 0..{n_channels - 1}")  # fmt: skip
    yield "model.decoder.embeddings.embed.weight", torch.cat([embeddings[c] for c in range(n_channels)])


def nari_names(hf_names: list[str], n_channels: int) -> set[str]:
    """The nari-labs tensor names that fill the given transformers names."""
    out = set()
    for name in hf_names:
        if name == "model.decoder.embeddings.embed.weight":
            out |= {f"decoder.embeddings.{c}.weight" for c in range(n_channels)}
        elif name == "logits_dense.weight":
            out.add("decoder.logits_dense.weight")
        else:
            nari = name.removeprefix("model.")
            for src, dst in _NARI_RENAME:
                nari = nari.replace(dst, src)
            out.add(nari)
    return out


def load_dia_weights(cfg: DiaConfig, root: Path, dtype: torch.dtype, device: torch.device) -> Dia:
    """Build :class:`Dia` on the meta device and fill it from ``root``'s safetensors, verified."""
    files = weight_files(root)
    names = [n for f in files for n in list_tensors(f)]
    layout = detect_dia_layout(names)
    with torch.device("meta"):
        model = Dia(cfg)
    expected = {n: tuple(p.shape) for n, p in model.state_dict().items()}
    wanted = set(expected) if layout == HF else nari_names(list(expected), cfg.decoder.num_channels)
    missing, unexpected = wanted - set(names), set(names) - wanted
    if missing or unexpected:
        raise CheckpointError(describe_mismatch(missing, unexpected, f"{root} ({layout} layout)"))
    stream = _iter_checkpoint(files) if layout == HF else _nari_state(files, cfg.decoder.num_channels)
    state = {}
    for name, tensor in stream:
        if tuple(tensor.shape) != expected[name]:
            raise CheckpointError(f"{root}: {name} has shape {tuple(tensor.shape)}, the config implies {expected[name]}")  # fmt: skip
        state[name] = tensor.to(device=device, dtype=dtype)
    model.load_state_dict(state, strict=True, assign=True)
    model.model.decoder.embeddings.reset_derived_buffers(device)
    return model.eval().requires_grad_(False)


# ---- DAC ----------------------------------------------------------------------------------------------------
WEIGHT_NORM = {
    ".weight_g": ".weight_v",
    ".parametrizations.weight.original0": ".parametrizations.weight.original1",
}


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """w = g · v / ‖v‖ with the norm over every dim but 0 (torch's weight_norm, dim=0)."""
    g, v = g.float(), v.float()
    return g * v / v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


def fold_all(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace every weight-norm pair by its folded ``.weight``."""
    out = {}
    for name, tensor in state.items():
        for g_suffix, v_suffix in WEIGHT_NORM.items():
            if name.endswith(v_suffix):
                break
            if name.endswith(g_suffix):
                base = name[: -len(g_suffix)]
                v = state.get(base + v_suffix)
                if v is None:
                    raise CheckpointError(f"{name} has no matching {base + v_suffix}")
                out[base + ".weight"] = fold_weight_norm(tensor, v)
                break
        else:
            out[name] = tensor
    return out


def descript_to_hf(name: str, n_blocks: int) -> str:
    """A descript DAC module path → transformers' ``DacModel`` path (``convert_dac_checkpoint.py``'s map)."""
    parts = name.split(".")
    if parts[0] == "decoder" and parts[1] == "model":
        i, rest = int(parts[2]), parts[3:]
        if i == 0:
            return ".".join(["decoder", "conv1", *rest])
        if i == n_blocks + 1:
            return ".".join(["decoder", "snake1", *rest])
        if i == n_blocks + 2:
            return ".".join(["decoder", "conv2", *rest])
        j = int(rest[1])  # block.{j}
        sub = {0: ["snake1"], 1: ["conv_t1"]}.get(j) or [f"res_unit{j - 1}", _UNIT[int(rest[3])]]
        tail = rest[2:] if j < 2 else rest[4:]
        return ".".join(["decoder", "block", str(i - 1), *sub, *tail])
    if parts[0] == "encoder" and parts[1] == "block":
        i, rest = int(parts[2]), parts[3:]
        if i == 0:
            return ".".join(["encoder", "conv1", *rest])
        if i == n_blocks + 1:
            return ".".join(["encoder", "snake1", *rest])
        if i == n_blocks + 2:
            return ".".join(["encoder", "conv2", *rest])
        j = int(rest[1])
        sub = {3: ["snake1"], 4: ["conv1"]}.get(j) or [f"res_unit{j + 1}", _UNIT[int(rest[3])]]
        tail = rest[2:] if j >= 3 else rest[4:]
        return ".".join(["encoder", "block", str(i - 1), *sub, *tail])
    return name


_UNIT = {0: "snake1", 1: "conv1", 2: "snake2", 3: "conv2"}


def read_dac_checkpoint(path: Path) -> tuple[DacConfig, dict[str, torch.Tensor]]:
    """(config, folded state dict in transformers names) from a DAC directory or a ``weights.pth`` file."""
    if path.is_dir() and (path / DESCRIPT_WEIGHTS).is_file():
        path = path / DESCRIPT_WEIGHTS
    if path.is_file():
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            cfg = parse_descript_kwargs(ckpt["metadata"]["kwargs"])
            raw = ckpt["state_dict"]
        except (KeyError, TypeError, RuntimeError, OSError) as exc:
            raise CheckpointError(f"{path} is not a descript DAC checkpoint: {exc}") from exc
        n = len(cfg.decoder_rates)
        return cfg, {descript_to_hf(k, n): v for k, v in fold_all(raw).items()}
    config = path / "config.json"
    if not config.is_file():
        raise CheckpointError(
            f"{path} holds no DAC: expected {DESCRIPT_WEIGHTS} or config.json + model.safetensors"
        )
    cfg = parse_hf_dac_config(json.loads(config.read_text(encoding="utf-8")))
    state = dict(_iter_checkpoint(weight_files(path)))
    return cfg, fold_all(state)


def load_dac(path: Path, device: torch.device) -> DAC:
    """The fp32 DAC from ``path`` (descript or transformers layout); CheckpointError lists any mismatch."""
    cfg, state = read_dac_checkpoint(path)
    with_encoder = any(n.startswith("encoder.") for n in state)
    with torch.device("meta"):
        dac = DAC(cfg, with_encoder)
    expected = {n: tuple(p.shape) for n, p in dac.state_dict().items()}
    missing, unexpected = set(expected) - set(state), set(state) - set(expected)
    if missing or unexpected:
        raise CheckpointError(describe_mismatch(missing, unexpected, f"DAC {path}"))
    for name, tensor in state.items():
        if tuple(tensor.shape) != expected[name]:
            raise CheckpointError(f"DAC {path}: {name} has shape {tuple(tensor.shape)}, the config implies {expected[name]}")  # fmt: skip
    dac.load_state_dict({n: t.to(device, torch.float32) for n, t in state.items()}, strict=True, assign=True)
    return dac.eval().requires_grad_(False)


# ---- where the codec comes from -----------------------------------------------------------------------------
CODEC_ENV = "SPEECHSERVE_DIA_CODEC"
DEFAULT_CODEC = "descript/dac_44khz"
"""The DAC Dia was trained with, in transformers' layout on the Hugging Face hub."""


def locate_codec(root: Path, ref: str | None = None) -> Path:
    """The DAC of a Dia checkpoint: its ``dac/`` folder if present, else ``ref`` (``speechserve.load``'s
    ``codec``), else ``$SPEECHSERVE_DIA_CODEC``, else ``descript/dac_44khz``; a local directory, a
    ``weights.pth`` file or a hub id, resolved like a model (cache, then download)."""
    if (root / "dac").is_dir():
        return root / "dac"
    source = "codec" if ref is not None else CODEC_ENV
    ref = ref if ref is not None else os.environ.get(CODEC_ENV, DEFAULT_CODEC)
    if Path(ref).expanduser().is_file():
        return Path(ref).expanduser()
    try:
        return resolve_model_dir(ref)
    except ModelNotFound as exc:
        raise ModelNotFound(
            f"Dia needs its DAC codec: {root} has no dac/ folder and the codec {ref!r} ({source}) was not "
            f"found: {exc}"
        ) from exc
