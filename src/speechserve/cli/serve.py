"""`speechserve serve`: the OpenAI-compatible server."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from speechserve.cli.common import UsageError, add_isq_arg, check_isq

if TYPE_CHECKING:
    from speechserve.scale.options import ScaleOptions
    from speechserve.server import ServerSettings

LOG_FORMAT = "%(asctime)s %(levelname)s:     %(name)s: %(message)s"


LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

RAY_ONLY_FLAGS = ("ray_address", "gpus_per_replica", "cpus_per_replica", "target_ongoing_requests")
"""Scale-out flags that mean nothing without ``--replicas`` / ``--autoscale``."""


def serve_log_config(level: str) -> dict:
    """uvicorn's logging config with a timestamp on every line: uvicorn's own and access lines, and every
    other logger (speechserve's, the engine's) through the root logger at ``level``."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for formatter in config["formatters"].values():
        formatter["fmt"] = "%(asctime)s " + formatter["fmt"]
        formatter["datefmt"] = LOG_DATE_FORMAT
    config["formatters"]["plain"] = {"format": LOG_FORMAT, "datefmt": LOG_DATE_FORMAT}
    config["handlers"]["plain"] = {
        "formatter": "plain",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["root"] = {"handlers": ["plain"], "level": level.upper()}
    return config


def scale_options(args: argparse.Namespace, settings: ServerSettings) -> ScaleOptions | None:
    """The Ray Serve scale-out asked for on the command line, checked (Ray installed, flags consistent)
    before any model loads; None: one process, and nothing of Ray is imported."""
    import importlib.util

    from speechserve.scale.options import ScaleOptions, parse_autoscale

    given = {f: getattr(args, f) for f in RAY_ONLY_FLAGS if getattr(args, f, None) is not None}
    if args.replicas is None and args.autoscale is None:
        if given:
            flag = "--" + next(iter(given)).replace("_", "-")
            raise UsageError(f"{flag} needs --replicas N or --autoscale MIN:MAX (scale-out on Ray Serve)")
        return None
    if importlib.util.find_spec("ray") is None:
        raise UsageError('scale-out needs Ray Serve, which is not installed: pip install "speechserve[ray]"')
    if settings.port == 0:
        raise UsageError("--port 0 cannot be used with --replicas: Ray Serve's proxy needs a fixed port")
    try:
        autoscale = parse_autoscale(args.autoscale) if args.autoscale else None
        return ScaleOptions(replicas=args.replicas, autoscale=autoscale, **given)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_serve(args: argparse.Namespace) -> int:
    import logging.config

    import uvicorn
    from pydantic import ValidationError

    from speechserve.checkpoints.resolve import resolve_model_dir
    from speechserve.server import ServerSettings, create_app

    given = {k: v for k, v in vars(args).items() if k in ServerSettings.model_fields and v not in (None, [])}
    try:
        settings = ServerSettings(**given)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"invalid server settings: {problems} (flags or SPEECHSERVE_* variables)") from None
    check_isq(settings.isq, settings.device)
    scale = scale_options(args, settings)
    for model in settings.model:  # fail (or download) before the server starts
        resolve_model_dir(model, revision=settings.revision)
    log_config = serve_log_config(settings.log_level)
    logging.config.dictConfig(log_config)  # timestamps from the first line; uvicorn applies it again
    if scale is not None:
        from speechserve.scale import ray_serve

        ray_serve.run(settings, scale)
        return 0
    app = create_app(settings)
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level=settings.log_level, log_config=log_config
    )
    return 0


def _add_serve_parser(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the OpenAI-compatible server (speech, transcriptions, chat with audio)",
        description="Every option can also be set as an env var: --max-waiting → SPEECHSERVE_MAX_WAITING.",
    )
    serve.add_argument(
        "--model",
        action="append",
        help="checkpoint directory or Hugging Face id; repeat to serve several models, e.g. a TTS and an ASR "
        "model side by side (or SPEECHSERVE_MODEL, comma-separated)",
    )
    for flag in ("--tokenizer", "--device", "--dtype", "--revision", "--codec"):
        serve.add_argument(flag, help=f"as for `speak` (SPEECHSERVE_{flag[2:].upper()})")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1; 0.0.0.0 for all)")
    serve.add_argument("--port", type=int, help="TCP port (default 8000; 0 picks a free one)")
    serve.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        help="accepted Bearer key (repeatable; default: no auth)",
    )
    serve.add_argument(
        "--served-model-name",
        action="append",
        help="name clients send as `model` (repeatable; with several --model, one per model, in order)",
    )
    serve.add_argument("--default-voice", help="voice for requests that name none")
    serve.add_argument("--max-input-chars", type=int, help="longest accepted input (default 4096)")
    serve.add_argument(
        "--segment-chars", type=int, help="long inputs are split into segments this long (400)"
    )
    serve.add_argument("--max-frames", type=int, help="cap on 80 ms frames per segment (default 2048)")
    serve.add_argument(
        "--max-upload-mb", type=float, help="largest audio upload / fetched file, MB (default 25)"
    )
    serve.add_argument(
        "--allowed-local-media-path", help="directory chat requests may read as file:// audio (default: none)"
    )
    serve.add_argument(
        "--asr-max-seq-len", type=int, help="KV positions per speech-to-text request (default 4096)"
    )
    serve.add_argument("--max-waiting", type=int, help="queued segments before 429 (default 64)")
    serve.add_argument("--max-batch", type=int, help="sequences generated together (default 32)")
    serve.add_argument(
        "--eager", action="store_const", const=True, help="no CUDA graphs / static shapes (debugging, parity)"
    )
    serve.add_argument("--cpu-threads", type=int, help="torch threads on CPU (default: cores − 1)")
    add_isq_arg(serve, " (SPEECHSERVE_ISQ)")
    serve.add_argument(
        "--cors-origin", dest="cors_origins", action="append", help="allowed CORS origin (repeatable)"
    )
    serve.add_argument("--log-level", help="debug, info, warning, error (default info)")
    serve.add_argument(
        "--no-warmup", dest="warmup", action="store_const", const=False, help="skip the start-up generation"
    )
    _add_scale_args(serve)
    serve.set_defaults(func=cmd_serve)


def _add_scale_args(serve: argparse.ArgumentParser) -> None:
    scale = serve.add_argument_group(
        'scale-out on Ray Serve (needs `pip install "speechserve[ray]"`; see docs/scale-out.md)'
    )
    scale.add_argument(
        "--replicas", type=int, help="run N replicas of the app behind Ray Serve (each holds every model)"
    )
    scale.add_argument("--autoscale", metavar="MIN:MAX", help="let Ray keep between MIN and MAX replicas")
    scale.add_argument(
        "--target-ongoing-requests",
        type=float,
        help="autoscaling target per replica (default: half of --max-batch)",
    )
    scale.add_argument("--ray-address", help="join this Ray cluster (default: start a local Ray)")
    scale.add_argument("--gpus-per-replica", type=float, help="GPUs Ray reserves per replica (default 0)")
    scale.add_argument("--cpus-per-replica", type=float, help="CPUs Ray reserves per replica (default 1)")
