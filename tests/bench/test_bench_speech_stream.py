"""`speechserve bench speech-stream`: the whole command on the tiny model, over a real local server."""

from __future__ import annotations

from speechserve.bench.speech_stream import TEXT, first_clause, tokens_of
from speechserve.cli import main


def test_speech_stream_bench_prints_one_row_of_three_latencies(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["bench", "speech-stream", "--runs", "1", "--frames", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    _, clause = first_clause(tokens_of(TEXT))
    assert f"first clause '{clause}'" in out
    (row,) = [line for line in out.splitlines() if line.startswith("| random tiny")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    stream_ms, one_shot_ms, whole_ms = (float(c) for c in cells[1:4])
    assert stream_ms > 0 and 0 < one_shot_ms < whole_ms  # waiting for the whole text costs the LLM's pace
    unwritten, total = cells[4].split(" of ")
    assert 0 < int(unwritten) < int(total) == len(TEXT)  # audio started while the text was still coming
