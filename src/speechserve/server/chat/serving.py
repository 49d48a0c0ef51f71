"""``POST /v1/chat/completions`` logic: check the model can chat, resolve the audio parts under the media
policy, build the prompt, drive the ASR engine, answer as one ``chat.completion`` or streamed chunks.

Talks to the engine through :class:`TextGeneration`; the media policy lives in ``media.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from speechserve.asr import TextDelta
from speechserve.asr.types import DEFAULT_CHAT_MAX_TOKENS
from speechserve.server.chat.media import MediaFetcher
from speechserve.server.chat.protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatStreamError,
    ChatUsage,
    Choice,
    ChunkChoice,
    Delta,
)
from speechserve.server.errors import error_object
from speechserve.server.headers import ignored_fields_header, json_safe
from speechserve.server.metrics import ServerMetrics
from speechserve.server.settings import ServerSettings
from speechserve.server.state import ModelRegistry
from speechserve.server.streaming import (
    CLIENT_CLOSED_REQUEST,
    SSE_DONE,
    SSE_HEADERS,
    ClientGone,
    ClosingStreamingResponse,
    peek,
    sse,
    unless_gone,
)
from speechserve.server.text_generation import Sampling, TextGeneration, TextPrompt, track

log = logging.getLogger("speechserve.server")


def _rate(tokens: int, seconds: float) -> float:
    return round(tokens / seconds, 3) if seconds > 0 else 0.0


def chat_usage(gen: TextGeneration) -> ChatUsage:
    """Token counts and mistral.rs-style timings of a finished generation."""
    end = gen.finished_at or time.perf_counter()
    first = gen.first_token_at or end
    prompt_s, completion_s, total_s = first - gen.submitted_at, end - first, end - gen.submitted_at
    p, c = gen.prompt_tokens, gen.completion_tokens
    return ChatUsage(
        prompt_tokens=p, completion_tokens=c, total_tokens=p + c,
        avg_tok_per_sec=_rate(p + c, total_s), avg_prompt_tok_per_sec=_rate(p, prompt_s),
        avg_compl_tok_per_sec=_rate(c, completion_s), total_time_sec=round(total_s, 6),
        total_prompt_time_sec=round(prompt_s, 6), total_completion_time_sec=round(completion_s, 6),
    )  # fmt: skip


class ChatService:
    """Answers audio-chat requests. Lifetime: the app's lifespan."""

    def __init__(
        self, settings: ServerSettings, registry: ModelRegistry, metrics: ServerMetrics,
        fetcher: MediaFetcher | None = None,
    ) -> None:  # fmt: skip
        self.settings, self.registry, self.metrics = settings, registry, metrics
        self.fetcher = fetcher or MediaFetcher(settings)

    async def create(self, body: ChatCompletionRequest, request: Request) -> Response:
        model = self.registry.for_task(body.model, "chat")
        opts = body.to_options()
        pipeline = model.pipeline
        messages = await self.fetcher.messages(body.messages)
        prompt, seconds = await asyncio.to_thread(pipeline.chat_prompt, messages)
        cap = opts.max_tokens or DEFAULT_CHAT_MAX_TOKENS
        sampling = Sampling(opts.temperature, opts.top_p, opts.seed)
        gen_id = f"chatcmpl-{uuid.uuid4().hex}"
        gen = TextGeneration.submit(model.engine, gen_id, [TextPrompt(prompt, 0.0, seconds, cap)], sampling, seconds)  # type: ignore[arg-type]  # fmt: skip
        finish = track(gen, model, self.metrics)
        try:  # until a streaming response owns ``finish``, every way out of here runs it
            return await self._respond(gen, body, model.id, request, finish)
        except ClientGone:  # it left before its response started: nobody to answer
            finish()
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        except BaseException:
            finish()
            raise

    async def _respond(
        self, gen: TextGeneration, body: ChatCompletionRequest, model: str, request: Request,
        finish: Callable[[], None],
    ) -> Response:  # fmt: skip
        headers = {"X-Generation-Id": gen.id}
        ignored = body.ignored_fields()
        if ignored:
            headers["X-Ignored-Fields"] = ignored_fields_header(ignored)
        if not body.stream:
            try:
                return await self._whole(gen, model, headers, request, ignored)
            finally:
                finish()
        first, rest = await peek(gen.deltas(), request)
        usage = body.stream_options is not None and body.stream_options.include_usage
        chunks = _chunks(gen, model, first, rest, usage)
        return ClosingStreamingResponse(
            chunks, finish, media_type="text/event-stream", headers=headers | SSE_HEADERS
        )

    @staticmethod
    async def _whole(
        gen: TextGeneration, model: str, headers: dict[str, str], request: Request, ignored: list[str]
    ) -> Response:
        async def drain() -> None:
            async for _ in gen.deltas():
                pass

        await unless_gone(request, drain())  # ClientGone at once if the client leaves, queued or running
        message = AssistantMessage(content=gen.result().text)
        completion = ChatCompletion(
            id=gen.id, created=int(time.time()), model=model,
            choices=[Choice(message=message, finish_reason=gen.finish_reason)], usage=chat_usage(gen),
            ignored_fields=[json_safe(name) for name in ignored] or None,
        )  # fmt: skip
        unset = set() if ignored else {"ignored_fields"}
        return JSONResponse(completion.model_dump(exclude=unset), headers=headers)


async def _chunks(
    gen: TextGeneration, model: str, first: TextDelta | None, rest: AsyncIterator[TextDelta], usage: bool
) -> AsyncIterator[bytes]:
    """Role chunk, content chunks, a finish chunk, the usage chunk when asked, ``[DONE]``."""
    created = int(time.time())

    def chunk(delta: Delta, finish: str | None = None) -> bytes:
        choice = ChunkChoice(delta=delta, finish_reason=finish)
        return sse(ChatCompletionChunk(id=gen.id, created=created, model=model, choices=[choice]))

    try:
        yield chunk(Delta(role="assistant", content=""))
        if first is not None:
            yield chunk(Delta(content=first.text))
        async for delta in rest:
            yield chunk(Delta(content=delta.text))
        yield chunk(Delta(), gen.finish_reason)
        if usage:
            last = ChatCompletionChunk(
                id=gen.id, created=created, model=model, choices=[], usage=chat_usage(gen)
            )
            yield sse(last)
    except Exception as exc:
        log.error("chat stream %s failed after it started: %s", gen.id, exc)
        yield sse(ChatStreamError(error=error_object(exc)))
    yield SSE_DONE
