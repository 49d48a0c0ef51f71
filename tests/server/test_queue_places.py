"""One client request = one queue place, whatever its number of text segments (issue 9, item 6): a long
input on an idle server with ``max_waiting`` below its segment count is served, not refused forever."""

from __future__ import annotations

import pytest

from ._util import http_client, make_settings, serving

pytestmark = pytest.mark.anyio


async def test_a_long_input_takes_one_place(tiny_checkpoint) -> None:
    settings = make_settings(tiny_checkpoint, max_waiting=1, max_batch=1, segment_chars=40, max_frames=3)
    text = " ".join(f"Sentence number {i} is here." for i in range(6))  # 6 segments of ≤ 40 characters
    async with serving(settings) as app, http_client(app) as http:
        r = await http.post(
            "/v1/audio/speech",
            json={"input": text, "voice": "casual_male", "response_format": "pcm", "seed": 1},
        )
        assert r.status_code == 200, r.text
        assert int(r.headers["x-speech-segments"]) >= 4 and len(r.content) > 0
        assert app.state.registry.models[0].engine.stats().waiting == 0
