"""In-situ quantization (ISQ): quantize a loaded model's Linear weights at load, from outside the model files.

Modes (``isq=``), and the path taken on each device — the fastest correct one available here:

- ``int8``: on CPU, PyTorch's dynamic int8 (fbgemm kernels: int8 weights per output channel, activations
  quantized per call) — measured 7.2× faster per frame than fp32 on the real-width TTS flow head on a 2-core
  AVX2 EPYC, where the fp32 products are bandwidth-bound; on CUDA, torchao's int8 weight-only config.
- ``int4``: torchao's int4 weight-only (group size 128): CUDA only (its CPU kernels need a layout this torch
  build does not ship) — refused on CPU with a clear error.
- ``fp8``: torchao's float8 weight-only, on GPUs with compute capability ≥ 8.9 (Ada, Hopper); refused elsewhere.

What stays in full precision is the family's call (``Family.isq_keep``: module-name prefixes such as the codec
and small output heads), backed by measurement: embeddings and norms are not Linear layers and are never
touched; the codec (convolutions and a small transformer) is cheap next to the backbone and sensitive.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from speechserve.errors import UnsupportedFeature

MODES = ("int8", "int4", "fp8")


def targets(model: nn.Module, keep: tuple[str, ...] = ()) -> list[str]:
    """Names of the Linear layers :func:`quantize` would replace (every ``nn.Linear`` not under ``keep``)."""
    return [
        name
        for name, m in model.named_modules()
        if type(m) is nn.Linear and not any(name == k or name.startswith(k + ".") for k in keep)
    ]


def quantize(model: nn.Module, mode: str, keep: tuple[str, ...] = ()) -> list[str]:
    """Quantize the Linear layers of ``model`` in place (except those under ``keep``); returns their names."""
    if mode not in MODES:
        raise ValueError(f"unknown isq mode {mode!r}; use one of {', '.join(MODES)}")
    names = targets(model, keep)
    if not names:
        return names
    device = next(model.parameters()).device
    if device.type == "cpu":
        if mode != "int8":
            raise UnsupportedFeature(f"isq={mode} needs a CUDA GPU; on the CPU use isq=int8")
        _cpu_int8(model, set(names))
    else:
        _torchao(model, mode, set(names), device)
    return names


def _cpu_int8(model: nn.Module, names: set[str]) -> None:
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch.ao's eager-mode quantization is deprecated in favour of torchao,
        warnings.simplefilter("ignore")  # whose CPU int8 path is slower here than fbgemm's (see module doc)
        model.float()  # fbgemm takes fp32 activations
        spec = dict.fromkeys(names, per_channel_dynamic_qconfig)  # one scale per output row
        quantize_dynamic(model, qconfig_spec=spec, dtype=torch.qint8, inplace=True)
    for name, m in model.named_modules():
        if name in names:
            accept_vectors(m)


def int8_parts(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A CPU int8 Linear's weight as stored: (int8 values [out, in], float64 scales [out], int64 zero
    points [out]), one scale and zero point per output row."""
    weight, _ = module._weight_bias()  # type: ignore[operator]
    if weight.qscheme() != torch.per_channel_affine:
        raise ValueError(f"{type(module).__name__} is not a per-channel int8 Linear")
    return weight.int_repr(), weight.q_per_channel_scales(), weight.q_per_channel_zero_points()


def int8_linear(
    values: torch.Tensor, scales: torch.Tensor, zero_points: torch.Tensor, bias: torch.Tensor | None
) -> nn.Module:
    """The CPU int8 Linear :func:`quantize` builds, from its stored parts (:func:`int8_parts`): no rounding
    happens, so a model rebuilt from saved parts computes bit for bit what the quantized model did."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    qweight = torch._make_per_channel_quantized_tensor(
        values.to(torch.int8), scales.double(), zero_points.long(), 0
    )
    out, in_ = values.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = DynamicLinear(in_, out, bias_=bias is not None, dtype=torch.qint8)
    module.set_weight_bias(qweight, None if bias is None else bias.detach().float())
    accept_vectors(module)
    return module


def accept_vectors(module: nn.Module) -> None:
    """fbgemm's dynamic Linear wants ≥ 2-D input; nn.Linear also takes a single vector."""
    forward = module.forward

    def vector_forward(x: torch.Tensor) -> torch.Tensor:
        return forward(x[None])[0] if x.dim() == 1 else forward(x)

    module.forward = vector_forward  # type: ignore[method-assign]


def _torchao(model: nn.Module, mode: str, names: set[str], device: torch.device) -> None:
    try:
        from torchao.quantization import (
            Float8WeightOnlyConfig,
            Int4WeightOnlyConfig,
            Int8WeightOnlyConfig,
            quantize_,
        )
    except ImportError as exc:
        raise UnsupportedFeature(f"isq={mode} on {device.type} needs torchao: pip install torchao") from exc
    if mode == "fp8" and torch.cuda.get_device_capability(device) < (8, 9):
        raise UnsupportedFeature("isq=fp8 needs a GPU with compute capability 8.9 or newer (Ada, Hopper)")
    config = {
        "int8": Int8WeightOnlyConfig,
        "int4": lambda: Int4WeightOnlyConfig(group_size=128),
        "fp8": Float8WeightOnlyConfig,
    }[mode]()
    by_module = {id(m): n for n, m in model.named_modules()}
    quantize_(model, config, filter_fn=lambda m, fqn="": by_module.get(id(m)) in names)


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the model's weights as stored (quantized packed weights included)."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    for m in model.modules():
        if hasattr(m, "_weight_bias") and callable(getattr(m, "weight", None)):
            w, b = m._weight_bias()  # torch.ao dynamic Linear: int8 values + float64 per-channel scales
            scales = w.q_per_channel_scales().numel() if w.qscheme() == torch.per_channel_affine else 1
            total += w.numel() * w.element_size() + scales * 8 + (b.numel() * 4 if b is not None else 0)
    return total
