"""`speechserve bench realtime` on a tiny realtime checkpoint: a few seconds of live audio, checking the
figures' fields and their sanity (not their values: timing depends on the machine)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import speechserve
from speechserve.cli import main
from speechserve.models.voxtral_realtime.bench import (
    _lags,
    long_session,
    outputs_after_pieces,
    realtime_point,
)


@pytest.fixture(scope="module")
def tiny_realtime_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from speechserve.testing.realtime_checkpoint import write_random_realtime_checkpoint

    return write_random_realtime_checkpoint(tmp_path_factory.mktemp("bench_rt"), "mistral", seed=0)


@pytest.fixture(scope="module")
def rt_pipe(tiny_realtime_checkpoint: Path):  # type: ignore[no-untyped-def]
    return speechserve.load(tiny_realtime_checkpoint, device="cpu")


def test_ids_per_piece_match_a_live_session(rt_pipe) -> None:  # type: ignore[no-untyped-def]
    """The lag's schedule (ids computable after each 80 ms piece) is what a real session yields."""
    counts = outputs_after_pieces(rt_pipe, 30, 1280)
    session, live = rt_pipe.session(), []
    for _ in range(30):
        session.push(np.zeros(1280, np.float32))
        list(session.steps())
        live.append(len(session.ids))
    assert counts == live
    first = next(j for j, c in enumerate(counts) if c)
    assert counts[first:] == list(range(1, 31 - first))  # the prompt's id, then one per piece


def test_lag_is_counted_from_the_piece_that_made_an_id_computable() -> None:
    pushes, counts = [0.0, 0.08, 0.16, 0.24], [0, 1, 2, 3]
    assert _lags(pushes, counts, [0.10, 0.30, 0.31, 0.5]) == pytest.approx([0.02, 0.14, 0.07])


def test_sessions_at_real_time_pace(rt_pipe) -> None:  # type: ignore[no-untyped-def]
    p = realtime_point(rt_pipe, concurrency=2, seconds=2.0, max_lag_ms=10_000)
    assert p.concurrency == 2 and p.audio_seconds == pytest.approx(2.0)
    assert 0 <= p.lag_ms_p50 <= p.lag_ms_p95 <= p.lag_ms_max < 10_000
    assert p.step_ms_p50 > 0 and 1 <= p.batch_p50 <= 2 and p.realtime


def test_long_session_compares_two_spans(rt_pipe) -> None:  # type: ignore[no-untyped-def]
    s = long_session(rt_pipe, minutes=0.1, tolerance=0.1, span_seconds=1.6)
    assert s.step_ms_minute_1 > 0 and s.step_ms_last_minute > 0
    assert s.ratio == pytest.approx(s.step_ms_last_minute / s.step_ms_minute_1)
    with pytest.raises(ValueError, match="at least 3"):
        long_session(rt_pipe, minutes=0.05, tolerance=0.1, span_seconds=1.6)


def test_cli_json(capsys, tiny_realtime_checkpoint: Path) -> None:
    argv = ["bench", "realtime", "--model", str(tiny_realtime_checkpoint), "--concurrency", "1", "--seconds", "1.5",
            "--minutes", "0", "--json"]  # fmt: skip
    assert main(argv) == 0
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["kind"] == "realtime_sessions" and record["concurrency"] == 1
    assert record["dtype"] == "float32" and math.isfinite(record["lag_ms_p95"])


def test_cli_refuses_a_model_that_is_not_realtime(capsys, tiny_asr_checkpoint: Path) -> None:
    assert main(["bench", "realtime", "--model", str(tiny_asr_checkpoint), "--minutes", "0"]) == 2
    assert "measures realtime models" in capsys.readouterr().err
