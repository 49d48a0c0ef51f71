"""`speechserve serve`: the OpenAI-compatible server."""

from __future__ import annotations

import argparse
from typing import Any

from speechserve.cli.common import UsageError, add_isq_arg, check_isq

LOG_FORMAT = "%(asctime)s %(levelname)s:     %(name)s: %(message)s"


LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


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
    for model in settings.model:  # fail (or download) before the server starts
        resolve_model_dir(model, revision=settings.revision)
    log_config = serve_log_config(settings.log_level)
    logging.config.dictConfig(log_config)  # timestamps from the first line; uvicorn applies it again
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
    for flag in ("--tokenizer", "--device", "--dtype", "--revision"):
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
    serve.set_defaults(func=cmd_serve)
