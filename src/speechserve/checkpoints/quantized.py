"""Pre-quantized checkpoints: a model quantized in situ (ISQ int8) saved to disk and loaded back without
quantizing again.

Layout: the source checkpoint's files, in its own layout and names, except that the weight tensor of each
quantized Linear holds its int8 values (in the checkpoint's own row order), plus two sidecars:

- ``quantization.json``: ``{"format": "speechserve-isq", "version": 1, "mode": "int8", "scheme":
  "per_channel_symmetric", "modules": {module: checkpoint tensor or null}}``, plus ``"dynamic": [module, …]``
  when an ``int8`` model has parts in int8-dynamic's form (``Family.isq_dynamic``);
- ``quantization.safetensors``: per module ``<module>.scales`` (float64, one per output row, in the module's
  row order), ``<module>.zero_points`` (int64), and ``<module>.values`` (int8) for a module whose int8 values
  could not go into the weights file (its tensor also fills a full-precision parameter, or the family's
  loader transforms it beyond a reordering of rows); that tensor then stays as it was.

Loading goes through the family's own loader, unchanged: it reads the int8 tensors like any other (integers
of magnitude ≤ 128 are exact in every float dtype) and applies its row reorderings to them (Hugging Face q/k
rows), so each listed Linear ends up holding its int8 values; :func:`restore` then rebuilds it from them and
the stored scales. Nothing is rounded again, so the model computes bit for bit what quantizing the float
checkpoint at load computes (tested for Voxtral TTS and ASR).

No table of checkpoint names per family is needed: when saving, each quantized Linear's float weight (loaded
in fp32) is found in the checkpoint by value, up to an order of rows (:func:`_row_order`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from speechserve.errors import CheckpointError, InvalidRequest, UnsupportedFeature
from speechserve.models.quantize import Int8Linear, int8_linear, int8_parts, quantize, targets

MARKER = "quantization.json"
SIDECAR = "quantization.safetensors"
FORMAT, VERSION, SCHEME = "speechserve-isq", 1, "per_channel_symmetric"
SAVED_MODES = ("int8", "int8-dynamic")
"""Modes a checkpoint can be saved in: the CPU int8 forms, which store the same integers and scales (torchao's
CUDA forms are rebuilt at load)."""


def read_marker(root: Path) -> dict | None:
    """The parsed ``quantization.json`` of a checkpoint directory (None: not a pre-quantized checkpoint)."""
    path = Path(root) / MARKER
    if not path.is_file():
        return None
    marker = json.loads(path.read_text(encoding="utf-8"))
    if marker.get("format") != FORMAT or marker.get("version") != VERSION or marker.get("scheme") != SCHEME:
        raise CheckpointError(
            f"{path}: not a {FORMAT} v{VERSION} {SCHEME} description (format {marker.get('format')!r}, "
            f"version {marker.get('version')!r}, scheme {marker.get('scheme')!r})"
        )
    if marker.get("mode") not in SAVED_MODES:
        raise CheckpointError(f"{path}: unknown mode {marker.get('mode')!r}")
    return marker


# ---- loading ------------------------------------------------------------------------------------------------
def restore(model: nn.Module, root: Path, device: torch.device) -> str:
    """Rebuild the quantized Linears of a model its family loaded from the pre-quantized checkpoint ``root``;
    returns the mode. CheckpointError when the files do not match the model."""
    marker = read_marker(root)
    if marker is None:
        raise CheckpointError(f"{root} has no {MARKER}")
    if device.type != "cpu":
        raise UnsupportedFeature(
            f"{root} is a pre-quantized {marker['mode']} checkpoint for the CPU; on {device.type} load the "
            f"float checkpoint with isq={marker['mode']}"
        )
    parts = load_file(str(Path(root) / SIDECAR))
    model.float()  # as quantize() does: the int8 kernels take fp32 activations
    for name in marker["modules"]:
        linear = _linear(model, name, root)
        values = parts.get(f"{name}.values")
        if values is None:
            values = _integers(linear.weight, name, root)
        scales, zero_points = parts[f"{name}.scales"], parts[f"{name}.zero_points"]
        if values.shape != linear.weight.shape or scales.shape != (values.shape[0],):
            raise CheckpointError(
                f"{root}: {name}'s saved int8 parts do not fit {tuple(linear.weight.shape)}"
            )
        parent, _, child = name.rpartition(".")
        dynamic = marker["mode"] == "int8-dynamic" or name in marker.get("dynamic", ())
        module = int8_linear(values, scales, zero_points, linear.bias, dynamic=dynamic)
        setattr(model.get_submodule(parent), child, module)
    return str(marker["mode"])


def _linear(model: nn.Module, name: str, root: Path) -> nn.Linear:
    try:
        module = model.get_submodule(name)
    except AttributeError:
        module = None
    if type(module) is not nn.Linear:
        raise CheckpointError(f"{root / MARKER} lists {name}, which is not a Linear layer of this model")
    return module  # type: ignore[return-value]


def _integers(weight: torch.Tensor, name: str, root: Path) -> torch.Tensor:
    """The int8 values a loaded weight holds (CheckpointError when it holds anything else)."""
    values = weight.detach().round()
    if not torch.equal(values, weight.detach()) or values.max() > 127 or values.min() < -128:
        raise CheckpointError(
            f"{root}: the weight of {name} does not hold int8 values (was the file changed?)"
        )
    return values.to(torch.int8)


# ---- saving -------------------------------------------------------------------------------------------------
def save(source: str | Path, destination: str | Path, mode: str = "int8") -> dict[str, int]:
    """Write ``source`` quantized in ``mode`` to ``destination`` (a new or empty directory); returns counts
    of modules whose int8 values went into the weights file (``in_place``) or the sidecar (``sidecar``)."""
    from speechserve import registry
    from speechserve.checkpoints.layout import detect_layout
    from speechserve.loading import load

    if mode not in SAVED_MODES:
        raise UnsupportedFeature(
            f"pre-quantized checkpoints are saved in {', '.join(SAVED_MODES)}, not {mode}"
        )
    src, dst = Path(source), Path(destination)
    if read_marker(src) is not None:
        raise InvalidRequest(f"{src} is already quantized")
    if dst.exists() and any(dst.iterdir()):
        raise InvalidRequest(f"{dst} is not empty")
    layout = detect_layout(src)
    pipe = load(src, device="cpu", dtype=torch.float32, fast_matmul=False)
    model = pipe.model
    names = targets(model, registry.family_of(pipe).isq_keep)
    where = _find_in_checkpoint(model, names, layout.weights)
    family = registry.family_of(pipe)
    quantize(model, mode, family.isq_keep, family.isq_dynamic)
    parts, in_file = {}, {}
    for name in names:
        values, scales, zero_points = int8_parts(model.get_submodule(name))
        parts[f"{name}.scales"], parts[f"{name}.zero_points"] = scales, zero_points
        if name in where:
            tensor, order = where[name]
            in_file[tensor] = torch.empty_like(values).index_copy_(0, order, values)  # checkpoint row order
        else:
            parts[f"{name}.values"] = values
    shutil.copytree(src, dst, ignore=lambda d, f: [n for n in f if Path(d, n) in layout.weights], dirs_exist_ok=True)  # fmt: skip
    for path in layout.weights:
        _rewrite(path, dst / path.relative_to(src), in_file)
    save_file(parts, str(dst / SIDECAR))
    modules = {name: where[name][0] if name in where else None for name in names}
    dynamic = [name for name in names if not isinstance(model.get_submodule(name), Int8Linear)]
    marker = {"format": FORMAT, "version": VERSION, "mode": mode, "scheme": SCHEME, "modules": modules}
    if dynamic and mode == "int8":
        marker["dynamic"] = dynamic  # int8 with the family's dynamic parts (Family.isq_dynamic)
    (dst / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
    return {"in_place": len(where), "sidecar": len(names) - len(where)}


def _rewrite(path: Path, out: Path, replaced: dict[str, torch.Tensor]) -> None:
    """Copy one safetensors file with some tensors replaced (metadata kept)."""
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        tensors = {name: replaced.get(name) for name in f.keys()}  # noqa: SIM118
        for name, value in tensors.items():
            tensors[name] = f.get_tensor(name) if value is None else value
    save_file(tensors, str(out), metadata=metadata)


def _key(weight: torch.Tensor) -> tuple[tuple[int, ...], str]:
    """What identifies a matrix up to an order of its rows: its shape and its sorted row sums."""
    sums = weight.double().sum(dim=1).sort().values
    return tuple(weight.shape), hashlib.sha1(sums.numpy().tobytes()).hexdigest()


def _row_order(weight: torch.Tensor, tensor: torch.Tensor) -> torch.Tensor | None:
    """``order`` with ``weight[i] == tensor[order[i]]`` for every row, or None when there is none."""
    by_weight = weight.double().sum(dim=1).argsort(stable=True)
    by_tensor = tensor.double().sum(dim=1).argsort(stable=True)
    order = torch.empty_like(by_weight).index_copy_(0, by_weight, by_tensor)
    return order if torch.equal(weight, tensor[order]) else None


def _find_in_checkpoint(
    model: nn.Module, names: list[str], files: tuple[Path, ...]
) -> dict[str, tuple[str, torch.Tensor]]:
    """For each quantized Linear (by name) whose weight is a checkpoint tensor up to a row order, and whose
    tensor fills nothing else: (tensor name, row order)."""
    wanted: dict[tuple, list[str]] = {}
    for name in names:
        wanted.setdefault(_key(model.get_submodule(name).weight.detach()), []).append(name)
    kept = {
        _key(p.detach().float())
        for n, p in model.named_parameters()
        if p.dim() == 2 and n.rpartition(".")[0] not in names
    }
    found: dict[str, tuple[str, torch.Tensor]] = {}
    for path in files:
        with safe_open(str(path), framework="pt") as f:
            for tensor_name in f.keys():  # noqa: SIM118  (a safe_open handle, not a dict)
                tensor = f.get_tensor(tensor_name)
                if tensor.dim() != 2 or not tensor.is_floating_point():
                    continue
                tensor = tensor.float()
                key = _key(tensor)
                if key in kept or not wanted.get(key):
                    continue
                name = wanted[key][0]
                order = _row_order(model.get_submodule(name).weight.detach(), tensor)
                if order is not None:
                    found[name] = (tensor_name, order)
                    wanted[key].pop(0)
    return found
