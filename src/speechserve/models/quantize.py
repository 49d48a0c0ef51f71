"""In-situ quantization (ISQ): quantize a loaded model's Linear weights at load, from outside the model files.

Modes (``isq=``), and the path taken on each device — the fastest correct one available here:

- ``int8``: weight-only int8 (one scale per output row; activations keep their precision). On CPU
  :class:`Int8Linear`, computed by our kernel (:mod:`speechserve.models.small_m`: int8 weights times
  activations rounded per row to int16, whose error is ~60× below the weights') for up to
  ``KERNEL_MAX_ROWS`` rows and by dequantize-then-``F.linear`` above; where the kernel cannot be built (no
  compiler, no AVX2) it falls back to ``int8-dynamic``, with a warning. A family may name parts that take
  ``int8-dynamic``'s form under ``int8`` (``Family.isq_dynamic``: Voxtral TTS's flow head, whose 6-row
  products fbgemm does 2.3× faster). On CUDA, torchao's int8 weight-only config.
- ``int8-dynamic``: int8 weights and int8 activations, quantized per call (CPU: PyTorch's dynamic int8 on
  fbgemm; CUDA: torchao's dynamic-activation int8 config). The fastest on CPU — fbgemm's ``vpmaddubsw``
  does 32 products per instruction — but every activation is rounded to 7 bits per tensor, doubling the
  output error on a 9216×3072 weight (2.0 % vs 0.85 %).
  Measured at the real TTS widths (2-core EPYC, per decode frame vs fp32): ``int8`` 2.5× faster with 99.0 %
  of 200 teacher-forced semantic codes equal to fp32's, ``int8-dynamic`` 3.55× faster with 93.5 %; Voxtral
  ASR decode at batch 1: 3.0× and 3.5×, greedy ids equal for both (bench/RESULTS.md, "Session 4").
- ``int4``: torchao's int4 weight-only (group size 128): CUDA only (its CPU kernels need a layout this torch
  build does not ship) — refused on CPU with a clear error.
- ``fp8``: torchao's float8 weight-only, on GPUs with compute capability ≥ 8.9 (Ada, Hopper); refused elsewhere.

What stays in full precision is the family's call (``Family.isq_keep``: module-name prefixes such as the codec
and small output heads), backed by measurement: embeddings and norms are not Linear layers and are never
touched; the codec (convolutions and a small transformer) is cheap next to the backbone and sensitive.
"""

from __future__ import annotations

import logging
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from speechserve.errors import UnsupportedFeature
from speechserve.models import small_m

log = logging.getLogger(__name__)

MODES = ("int8", "int8-dynamic", "int4", "fp8")


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == k or name.startswith(k + ".") for k in prefixes)


def targets(model: nn.Module, keep: tuple[str, ...] = ()) -> list[str]:
    """Names of the Linear layers :func:`quantize` would replace (every ``nn.Linear`` not under ``keep``)."""
    return [name for name, m in model.named_modules() if type(m) is nn.Linear and not _under(name, keep)]


def quantize(
    model: nn.Module, mode: str, keep: tuple[str, ...] = (), dynamic: tuple[str, ...] = ()
) -> list[str]:
    """Quantize the Linear layers of ``model`` in place (except those under ``keep``); returns their names.
    ``dynamic``: prefixes whose Linears take int8-dynamic's form under ``int8`` on the CPU
    (``Family.isq_dynamic``)."""
    if mode not in MODES:
        raise ValueError(f"unknown isq mode {mode!r}; use one of {', '.join(MODES)}")
    names = targets(model, keep)
    if not names:
        return names
    device = next(model.parameters()).device
    if device.type == "cpu":
        if mode not in ("int8", "int8-dynamic"):
            raise UnsupportedFeature(f"isq={mode} needs a CUDA GPU; on the CPU use isq=int8 or int8-dynamic")
        under = [n for n in names if _under(n, dynamic)]
        _cpu_int8(model, set(names), set(names) if mode == "int8-dynamic" else set(under))
    else:
        _torchao(model, mode, set(names), device)
    return names


KERNEL_MAX_ROWS = 1024
"""Inputs of up to this many rows take the kernel (in passes of 12 rows); longer ones dequantize the weight
once and run one ``F.linear``. Measured on a 9216×3072 weight (2-core EPYC, 2 threads): kernel vs
dequantize + ``F.linear`` 22.7 vs 192 ms at 48 rows, 271 vs 420 at 512, 727 vs 732 at 1500 — and the
kernel never builds the 4× larger float weight."""


class Int8Linear(nn.Module):
    """Weight-only int8 Linear on the CPU: int8 values [out, in] (held in the kernel's packed layout,
    :func:`~speechserve.models.small_m.pack_int8`) and fp32 ``scales`` [out] (one per output row,
    symmetric), fp32 activations; computes ``F.linear(x, values * scales[:, None], bias)``."""

    def __init__(self, values: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.out_features, self.in_features = values.shape
        self.register_buffer("packed", small_m.pack_int8(values))
        self.register_buffer("scales", scales.to(torch.float32).contiguous())
        self.bias = None if bias is None else nn.Parameter(bias.detach().float(), requires_grad=False)

    @property
    def values(self) -> torch.Tensor:
        """The int8 values [out, in] (unpacked: a copy)."""
        return small_m.unpack_int8(self.packed, self.out_features, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // self.in_features if self.in_features else 0
        if 0 < rows <= KERNEL_MAX_ROWS:
            return small_m.linear_int8(x, self.packed, self.scales, self.bias, self.in_features)
        weight = self.values.to(torch.float32) * self.scales[:, None]
        return F.linear(x.float(), weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weight-only"


def is_int8(module: nn.Module) -> bool:
    """Whether ``module`` is one of the CPU int8 Linears :func:`quantize` builds (either path)."""
    return isinstance(module, Int8Linear) or type(module).__module__.startswith(
        "torch.ao.nn.quantized.dynamic"
    )


def weight_parts(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(int8 values, float64 scales, int64 zero points) of ``weight`` [out, in]: per output row, symmetric —
    exactly what PyTorch's per-channel weight observer and quantizer give (the rounding fbgemm's dynamic
    Linear applies), so both CPU paths and saved checkpoints hold the same integers."""
    from torch.ao.quantization.observer import PerChannelMinMaxObserver

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        observer = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
        observer(weight.detach().float())
        scales, zero_points = observer.calculate_qparams()
        q = torch.quantize_per_channel(
            weight.detach().float(), scales.double(), zero_points.long(), 0, torch.qint8
        )
    return q.int_repr(), q.q_per_channel_scales(), q.q_per_channel_zero_points()


def _cpu_int8(model: nn.Module, names: set[str], dynamic: set[str]) -> None:
    """``dynamic``: the names (of ``names``) that take fbgemm's dynamic form; the rest are weight-only."""
    model.float()  # both paths take fp32 activations
    if dynamic != names and small_m.kernel() is None:
        log.warning("isq=int8 needs the small-row kernel, which is not available here: using int8-dynamic")
        dynamic = names
    if dynamic:
        _fbgemm_int8(model, dynamic)
    for name in sorted(names - dynamic):
        linear = model.get_submodule(name)
        parent, _, child = name.rpartition(".")
        module = int8_linear(*weight_parts(linear.weight), linear.bias, dynamic=False)
        setattr(model.get_submodule(parent), child, module)


def _fbgemm_int8(model: nn.Module, names: set[str]) -> None:
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch.ao's eager-mode quantization is deprecated in favour of torchao,
        warnings.simplefilter("ignore")  # whose CPU int8 path is slower here than fbgemm's (see module doc)
        spec = dict.fromkeys(names, per_channel_dynamic_qconfig)  # one scale per output row
        quantize_dynamic(model, qconfig_spec=spec, dtype=torch.qint8, inplace=True)
    for name, m in model.named_modules():
        if name in names:
            accept_vectors(m)


def int8_parts(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A CPU int8 Linear's weight as stored: (int8 values [out, in], float64 scales [out], int64 zero
    points [out]), one scale and zero point per output row."""
    if isinstance(module, Int8Linear):
        return module.values, module.scales.double(), torch.zeros(module.out_features, dtype=torch.int64)
    weight, _ = module._weight_bias()  # type: ignore[operator]
    if weight.qscheme() != torch.per_channel_affine:
        raise ValueError(f"{type(module).__name__} is not a per-channel int8 Linear")
    return weight.int_repr(), weight.q_per_channel_scales(), weight.q_per_channel_zero_points()


def int8_linear(
    values: torch.Tensor,
    scales: torch.Tensor,
    zero_points: torch.Tensor,
    bias: torch.Tensor | None,
    dynamic: bool,
) -> nn.Module:
    """The CPU int8 Linear :func:`quantize` builds, from its stored parts (:func:`int8_parts`): no rounding
    happens, so a model rebuilt from saved parts computes bit for bit what the quantized model did.
    ``dynamic``: fbgemm's dynamic Linear (``int8-dynamic``) rather than weight-only :class:`Int8Linear`."""
    if not dynamic and small_m.kernel() is not None:
        if bool(zero_points.any()):
            raise ValueError("weight-only int8 needs symmetric (zero-point 0) scales")
        return Int8Linear(values, scales, bias)
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
            Int8DynamicActivationInt8WeightConfig,
            Int8WeightOnlyConfig,
            quantize_,
        )
    except ImportError as exc:
        raise UnsupportedFeature(f"isq={mode} on {device.type} needs torchao: pip install torchao") from exc
    if mode == "fp8" and torch.cuda.get_device_capability(device) < (8, 9):
        raise UnsupportedFeature("isq=fp8 needs a GPU with compute capability 8.9 or newer (Ada, Hopper)")
    config = {
        "int8": Int8WeightOnlyConfig,
        "int8-dynamic": Int8DynamicActivationInt8WeightConfig,
        "int4": lambda: Int4WeightOnlyConfig(group_size=128),
        "fp8": Float8WeightOnlyConfig,
    }[mode]()
    by_module = {id(m): n for n, m in model.named_modules()}
    quantize_(model, config, filter_fn=lambda m, fqn="": by_module.get(id(m)) in names)


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the model's weights as stored (quantized packed weights included)."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    for m in model.modules():
        if isinstance(m, Int8Linear):  # int8 values + fp32 scales (buffers; the bias is a parameter)
            total += m.out_features * m.in_features + m.scales.numel() * 4  # as stored, padding aside
    for m in model.modules():
        if hasattr(m, "_weight_bias") and callable(getattr(m, "weight", None)):
            w, b = m._weight_bias()  # torch.ao dynamic Linear: int8 values + float64 per-channel scales
            scales = w.q_per_channel_scales().numel() if w.qscheme() == torch.per_channel_affine else 1
            total += w.numel() * w.element_size() + scales * 8 + (b.numel() * 4 if b is not None else 0)
    return total
