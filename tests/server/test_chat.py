"""`POST /v1/chat/completions` with audio through the official openai client: ``input_audio`` and data-URL
``audio_url`` parts, streamed and not, give the SDK's answer; usage carries mistral.rs-style timings."""

from __future__ import annotations

import base64

import pytest

from speechserve import ChatOptions

from ._util import wav_bytes

pytestmark = pytest.mark.anyio

WAV = wav_bytes(2.0, seed=3)
B64 = base64.b64encode(WAV).decode()
QUESTION = {"type": "text", "text": "What is said in this recording?"}
INPUT_AUDIO = {"type": "input_audio", "input_audio": {"data": B64, "format": "wav"}}
AUDIO_URL = {"type": "audio_url", "audio_url": {"url": f"data:audio/wav;base64,{B64}"}}
TIMINGS = (
    "avg_tok_per_sec", "avg_prompt_tok_per_sec", "avg_compl_tok_per_sec",
    "total_time_sec", "total_prompt_time_sec", "total_completion_time_sec",
)  # fmt: skip


@pytest.fixture(scope="module")
def sdk_answer(tiny_asr):
    messages = [{"role": "user", "content": [{"type": "audio", "audio": WAV}, QUESTION]}]
    return tiny_asr.chat(messages, ChatOptions(max_tokens=6))


def _model(app) -> str:
    return app.state.registry.models[0].id


async def test_input_audio_answer_is_the_sdks(asr_app, asr_client, sdk_answer) -> None:
    completion = await asr_client.chat.completions.create(
        model=_model(asr_app), messages=[{"role": "user", "content": [INPUT_AUDIO, QUESTION]}], max_tokens=6
    )
    (choice,) = completion.choices
    assert choice.message.role == "assistant" and choice.message.content == sdk_answer.text
    assert choice.finish_reason == sdk_answer.finish_reason == "length"
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        sdk_answer.usage.prompt_tokens,
        sdk_answer.usage.completion_tokens,
    )
    timings = usage.model_dump()
    assert all(timings[k] >= 0 for k in TIMINGS)
    assert timings["total_time_sec"] >= timings["total_prompt_time_sec"] > 0
    assert timings["avg_compl_tok_per_sec"] > 0


async def test_data_url_audio_url_streamed_with_usage(asr_app, asr_client, sdk_answer) -> None:
    stream = await asr_client.chat.completions.create(
        model=_model(asr_app),
        messages=[{"role": "user", "content": [AUDIO_URL, QUESTION]}],  # type: ignore[list-item]
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    assert {c.object for c in chunks} == {"chat.completion.chunk"} and len({c.id for c in chunks}) == 1
    first, *middle, finish, usage = chunks
    assert first.choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content for c in middle) == sdk_answer.text
    assert finish.choices[0].finish_reason == "length" and all(c.usage is None for c in chunks[:-1])
    assert usage.choices == [] and usage.usage.completion_tokens == 6
    assert all(k in usage.usage.model_dump() for k in TIMINGS)


async def test_data_url_whole_and_input_audio_streamed_agree(asr_app, asr_client, sdk_answer) -> None:
    whole = await asr_client.chat.completions.create(
        model=_model(asr_app),
        messages=[{"role": "user", "content": [AUDIO_URL, QUESTION]}],  # type: ignore[list-item]
        max_tokens=6,
    )
    stream = await asr_client.chat.completions.create(
        model=_model(asr_app),
        messages=[{"role": "user", "content": [INPUT_AUDIO, QUESTION]}],
        max_tokens=6,
        stream=True,
    )
    chunks = [c async for c in stream]
    assert all(c.usage is None for c in chunks)  # no usage chunk unless asked
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert whole.choices[0].message.content == streamed == sdk_answer.text


async def test_multi_turn_sampled_with_a_seed(asr_app, asr_client, tiny_asr) -> None:
    messages = [
        {"role": "user", "content": [INPUT_AUDIO, QUESTION]},
        {"role": "assistant", "content": "Somebody talks."},
        {"role": "user", "content": "Say it in French."},
    ]
    completion = await asr_client.chat.completions.create(
        model=_model(asr_app), messages=messages, max_tokens=4, temperature=0.7, seed=11
    )
    sdk_messages = [
        *messages[:1],
        {"role": "user", "content": [{"type": "audio", "audio": WAV}, QUESTION]},
        *messages[2:],
    ]
    want = tiny_asr.chat(sdk_messages, ChatOptions(max_tokens=4, temperature=0.7, seed=11))
    assert completion.choices[0].message.content == want.text  # same seed, same sampled answer
