"""What every `speechserve` command shares: the usage error, checks that run before a model loads, loading,
and the model/ISQ/threads arguments. Importing it imports nothing heavy."""

from __future__ import annotations

import argparse
import os
from typing import Any

EXIT_USAGE = 2
"""Exit status of every user mistake (argparse's own)."""


COMMAND_OF = {"speech": "speak", "transcription": "transcribe"}
"""The command that serves each registry capability."""


ISQ_MODES = ("int8", "int8-dynamic", "int4", "fp8")
"""`--isq` choices: speechserve.models.quantize.MODES, spelled here so `--help` imports nothing."""


class UsageError(Exception):
    """A mistake on the command line (a missing file, an unwritable output, the wrong kind of model)."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


# --- checks that run before any model is loaded ---------------------------------------------------------


def _check_input_file(path: str, what: str) -> None:
    if not os.path.isfile(path):
        problem = "is a directory" if os.path.isdir(path) else "does not exist"
        raise UsageError(f"{what} {path} {problem}; give an existing file")


def _check_output_file(path: str) -> None:
    """The output can be created: its directory exists and is writable, and it is not a directory."""
    if os.path.isdir(path):
        raise UsageError(f"-o {path} is a directory; give a file name")
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise UsageError(
            f"-o {path}: directory {directory} does not exist; create it first or choose another"
        )
    writable = os.access(path, os.W_OK) if os.path.exists(path) else os.access(directory, os.W_OK | os.X_OK)
    if not writable:
        raise UsageError(f"-o {path}: permission denied; choose a file you can write")


def check_codec(codec: str | None) -> None:
    """``--codec`` names an existing file or directory, or is written like a hub id (``owner/name``)."""
    if codec is None or os.path.exists(os.path.expanduser(codec)):
        return
    if codec.startswith(("/", ".", "~")) or codec.count("/") != 1:
        raise UsageError(f"--codec {codec} does not exist; give a codec directory, a weights.pth or a hub id")


def check_device(device: str | None) -> None:
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {device}: not a device; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: no CUDA device is available here; use --device cpu")


def check_isq(isq: str | None, device: str | None) -> None:
    """Refuse, before any weights are read, an ISQ mode this machine cannot run (see
    :mod:`speechserve.models.quantize`: int8 runs anywhere, int4 and fp8 need CUDA, every CUDA mode torchao,
    fp8 a GPU of compute capability 8.9 or newer)."""
    if isq is None:
        return
    import torch

    dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type != "cuda":
        if isq not in ("int8", "int8-dynamic"):
            raise UsageError(f"--isq {isq} needs a CUDA GPU; on the CPU use --isq int8 or int8-dynamic")
        return
    import importlib.util

    if importlib.util.find_spec("torchao") is None:
        raise UsageError(f"--isq {isq} on a GPU needs torchao: pip install torchao")
    if isq == "fp8" and torch.cuda.get_device_capability(dev) < (8, 9):
        raise UsageError("--isq fp8 needs a GPU with compute capability 8.9 or newer (Ada, Hopper)")


def _check_capability(args: argparse.Namespace, capability: str, task: str) -> None:
    """Refuse a model that cannot do ``capability`` from its files alone (its config says its family), before
    its weights are read. Unrecognised checkpoints fall through to `speechserve.load`'s own error."""
    from speechserve import registry
    from speechserve.checkpoints.layout import detect_layout
    from speechserve.checkpoints.resolve import resolve_model_dir

    layout = detect_layout(resolve_model_dir(args.model, revision=args.revision))
    family = registry.identify(layout.format, layout.config)
    if family is not None and capability not in family.capabilities:
        can = ", ".join(sorted(family.capabilities)) or "nothing this command line runs"
        other = [f"`speechserve {cmd}`" for cap, cmd in COMMAND_OF.items() if cap in family.capabilities]
        hint = f"use it with {' or '.join(other)}, or pass" if other else "pass"
        raise UsageError(
            f"{args.model} is a {family.name} model ({can}): it cannot {task}; {hint} a model that can "
            f"(`speechserve dev families` lists what each family does)"
        )


def _load(args: argparse.Namespace, capability: str, task: str) -> Any:
    """Set the CPU threads, check device and model kind, then load the model."""
    import speechserve

    isq = getattr(args, "isq", None)  # `voices` has no --isq
    codec = getattr(args, "codec", None)  # only the commands that load a speech model have --codec
    check_codec(codec)
    check_device(args.device)
    check_isq(isq, args.device)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    _check_capability(args, capability, task)
    return speechserve.load(
        args.model,
        device=args.device,
        dtype=args.dtype,
        tokenizer=args.tokenizer,
        revision=args.revision,
        isq=isq,
        codec=codec,
    )


# --- arguments ----------------------------------------------------------------------------------------


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        required=True,
        help="local checkpoint directory, or a Hugging Face id (cached or downloaded)",
    )
    p.add_argument("--tokenizer", help="tekken.json to use instead of the checkpoint's own")
    p.add_argument("--device", help="cpu, cuda, cuda:1 … (default: cuda when available)")
    p.add_argument("--dtype", help="float32, bfloat16 or float16 (default: bf16 on cuda, fp32 on cpu)")
    p.add_argument("--revision", help="hub revision (branch, tag or commit) when --model is a hub id")


def add_isq_arg(p: argparse.ArgumentParser, help_suffix: str = "") -> None:
    p.add_argument(
        "--isq",
        choices=ISQ_MODES,
        help="quantize the weights at load: int8 (weight-only) or int8-dynamic (activations too: faster on "
        "CPU, less exact), int4 or fp8 (GPU only); default: none" + help_suffix,
    )


def add_codec_arg(p: argparse.ArgumentParser, help_suffix: str = "") -> None:
    p.add_argument(
        "--codec",
        help="audio codec of models that load one separately (Dia's DAC): a directory, a weights.pth or a hub "
        "id (default: the checkpoint's dac/ folder, else $SPEECHSERVE_DIA_CODEC, else descript/dac_44khz)"
        + help_suffix,
    )


def _add_threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=_positive_int, help="torch CPU threads (default: torch's, one per core)")
