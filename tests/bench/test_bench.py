"""The benchmark tools: VoxServe's viability formula, the offline sweep command, random checkpoints of every
family."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import speechserve
from speechserve import registry
from speechserve.bench.golden import key_error
from speechserve.bench.metrics import chunk_viability, percentile, summarize
from speechserve.bench.offline import SpeechBench
from speechserve.cli import main
from speechserve.server.settings import OPENAI_VOICE_ALIASES
from speechserve.testing.checkpoint import RELEASE_VOICES

WRITERS = [f.name for f in registry.families() if f.write_random is not None]


def test_viability_matches_voxserve_definition() -> None:
    # reads at 0, 0.05, 0.15, 0.40 s carrying 0.1 s of audio each: chunk 3 arrives after 0.3 s played → late
    assert chunk_viability([0.0, 0.05, 0.15, 0.40], [0.1, 0.1, 0.1, 0.1]) == (pytest.approx(200 / 3), False)
    assert chunk_viability([0.0, 0.05, 0.15], [0.1, 0.2, 0.1]) == (100.0, True)
    assert chunk_viability([0.0, 0.1], [0.1, 0.1]) == (0.0, False)  # equal is not "still playing"
    assert chunk_viability([0.0], [1.0]) is None  # fewer than 2 reads: excluded


def test_percentiles() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([5], 95) == 5
    assert summarize([1.0, 2.0, 3.0])["mean"] == 2.0


def test_offline_sweep_command(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "offline", "--preset", "tiny", "--concurrency", "1,2", "--frames", "3", "--repeats", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert len(rows) == 2 and "bare model loop" in out and "throughput at concurrency 2" in out


JSON_FIELDS = {
    "backbone_ms_per_frame", "flow_ms_per_frame", "codec_ms_per_frame", "frames_per_s", "ttfa_ms_p50", "rtf_p50",
    "peak_rss_mb", "weight_gb_per_s", "copy_gb_per_s",
}  # fmt: skip


def test_offline_sweep_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "offline", "--preset", "tiny", "--concurrency", "1,2", "--frames", "4", "--repeats", "1"]
    assert main([*args, "--json", "--device", "cpu"]) == 0
    points = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["concurrency"] for p in points] == [1, 2]  # one object per point, nothing else on stdout
    for p in points:
        assert set(p) >= JSON_FIELDS and all(p[k] > 0 for k in JSON_FIELDS)
        assert p["isq"] is None and p["cuda_graphs"] is False and p["frames_per_request"] == 4
        assert p["frames_per_s"] * p["wall_s"] == pytest.approx(4 * p["concurrency"])
        # the three stages cannot take more than the wall time of the burst
        staged = (p["backbone_ms_per_frame"] + p["flow_ms_per_frame"] + p["codec_ms_per_frame"]) / 1000
        assert staged * p["frames_per_s"] < 1.0


def test_stage_timers_are_removed_with_the_bench(tiny_tts) -> None:
    bench = SpeechBench(tiny_tts, 1, 256)
    program = bench.core.program
    assert {"decode", "frame_head"} <= set(vars(program.hot)) and "decode" in vars(program.codec)
    bench.warm(2, "Hi.")
    assert bench.timers.seconds["backbone"] > 0 and bench.timers.seconds["codec"] > 0
    bench.close()
    assert not {"decode", "frame_head"} & set(vars(program.hot)) and "decode" not in vars(program.codec)


def test_golden_comparison_rule() -> None:
    ints = torch.tensor([1, 2, 3])
    assert key_error(ints, ints.clone())["ok"] and not key_error(ints, torch.tensor([1, 2, 4]))["ok"]
    want = torch.tensor([10.0, -float("inf"), 2.0])
    assert key_error(want + torch.tensor([9e-4, 0, 0]), want) == {
        "ok": True,
        "rel": pytest.approx(9e-5, rel=1e-3),
    }
    assert not key_error(want + torch.tensor([2e-3, 0, 0]), want)["ok"]  # 2e-4 of the peak
    assert key_error(torch.tensor([10.0, 0.0, 2.0]), want)["problem"] == "different non-finite pattern"
    assert not key_error(ints.float(), want)["ok"]  # dtype differs


def test_random_checkpoint_command(tmp_path: Path) -> None:
    assert main(["dev", "random-checkpoint", str(tmp_path / "ck"), "--preset", "tiny", "--with-encoder"]) == 0
    tts = speechserve.load(tmp_path / "ck")
    assert registry.family_of(tts).name == "voxtral_tts" and tts.supports_voice_cloning
    assert tts.voices == sorted(RELEASE_VOICES) and len(tts.voices) == 20
    assert set(OPENAI_VOICE_ALIASES.values()) <= set(tts.voices)  # "voice": "alloy" works as in the README


@pytest.mark.parametrize("family", WRITERS)
def test_random_checkpoint_of_every_family_loads(tmp_path: Path, family: str, capsys) -> None:
    assert main(["dev", "random-checkpoint", "--family", family, str(tmp_path / "ck")]) == 0
    assert f"wrote a random tiny {family} checkpoint" in capsys.readouterr().out
    pipeline = speechserve.load(tmp_path / "ck", device="cpu")
    assert registry.family_of(pipeline).name == family


def test_random_checkpoint_options_a_family_lacks(tmp_path: Path, capsys) -> None:
    """A preset or an option the family's writer does not have is a one-line usage error, for any family."""

    def write_random(directory: str, preset: str = "tiny", seed: int = 0) -> Path:
        sizes = {"tiny": 1}
        Path(directory, f"w{sizes[preset]}").mkdir(parents=True)
        return Path(directory)

    toy = registry.Family("toy_writer", lambda fmt, cfg: False, lambda ctx: None, frozenset({"speech"}),
                          write_random=write_random)  # fmt: skip
    registry.register(toy)
    try:
        assert main(["dev", "random-checkpoint", "--family", "toy_writer", str(tmp_path / "a")]) == 0
        assert (tmp_path / "a" / "w1").is_dir()
        assert (
            main(
                [
                    "dev",
                    "random-checkpoint",
                    "--family",
                    "toy_writer",
                    "--preset",
                    "small",
                    str(tmp_path / "b"),
                ]
            )
            == 2
        )
        assert (
            capsys.readouterr().err == "speechserve: error: --preset small: toy_writer has no such preset\n"
        )
        assert (
            main(
                ["dev", "random-checkpoint", "--family", "toy_writer", "--with-encoder", str(tmp_path / "c")]
            )
            == 2
        )
        assert (
            capsys.readouterr().err
            == "speechserve: error: --with-encoder does not apply to toy_writer checkpoints\n"
        )
    finally:
        registry.unregister("toy_writer")
