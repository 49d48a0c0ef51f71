"""`speechserve bench gpu --device cpu --smoke`: the GPU benchmark end to end on tiny checkpoints — every
section saved as JSON with every figure the GPU run reports, golden parity holding, and what a CPU cannot
run (int4, fp8) recorded as refused rather than failing the run."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from speechserve import registry
from speechserve.bench.gpu import SECTIONS, SMOKE
from speechserve.cli import main

TTS_FIELDS = {
    "ttfa_ms_p50", "ttfa_ms_p95", "rtf_p50", "rtf_p95", "frames_per_s", "backbone_ms_per_frame",
    "flow_ms_per_frame", "codec_ms_per_frame", "peak_rss_mb", "copy_gb_per_s", "late_streams",
}  # fmt: skip


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out, checkpoints = tmp_path_factory.mktemp("gpu-bench") / "out", tmp_path_factory.mktemp("gpu-ck")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        argv = [
            "bench",
            "gpu",
            "--device",
            "cpu",
            "--smoke",
            "--out",
            str(out),
            "--checkpoints",
            str(checkpoints),
        ]
        assert main(argv) == 0
    return out, [json.loads(line) for line in printed.getvalue().splitlines()]


def _records(out: Path, section: str) -> list[dict]:
    body = json.loads((out / f"{section}.json").read_text())
    assert (
        body["section"] == section and body["plan"]["preset"] == "tiny" and body["machine"]["device"] == "cpu"
    )
    return body["records"]


def test_every_section_saved_and_printed(smoke) -> None:
    out, printed = smoke
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == {} and summary["files"] == {s: f"{s}.json" for s in SECTIONS}
    saved = [r for s in SECTIONS for r in _records(out, s)]
    assert printed == saved  # every figure printed as it was measured, and nothing else


def test_machine(smoke) -> None:
    (record,) = _records(smoke[0], "machine")
    assert record["copy_gb_per_s"] > 0 and record["peak_rss_mb"] > 0 and record["cpu_cores"] >= 1


def test_golden_parity_holds(smoke) -> None:
    records = _records(smoke[0], "golden")
    reference = [r for r in records if r["kind"] == "reference"]
    assert {r["family"] for r in reference} == {p.name for p in (Path(__file__).parents[1] / "golden").iterdir() if p.is_dir()}  # fmt: skip
    assert all(r["ok"] and r["failed"] == [] and r["worst_rel"] < 1e-4 for r in reference)
    device = {r["dtype"]: r for r in records if r["kind"] == "device"}
    assert device["float32"]["ok"] and device["float32"]["codes_equal_fraction"] == 1.0
    assert device["bfloat16"]["ok"] is None and device["bfloat16"]["rel"]["prefill_hidden"] < 0.05


def test_tts_sweep_with_and_without_graphs_for_each_isq_mode(smoke) -> None:
    records = _records(smoke[0], "tts")
    refused = {r["isq"]: r["error"] for r in records if "error" in r}
    assert set(refused) == {"int4", "fp8"} and all("needs a CUDA GPU" in e for e in refused.values())
    points = [r for r in records if "error" not in r]
    grid = {(r["isq"], r["eager"], r["concurrency"]) for r in points}
    assert grid == {(m, e, c) for m in (None, "int8") for e in (False, True) for c in SMOKE.concurrency}
    for r in points:
        assert set(r) >= TTS_FIELDS and r["frames_per_s"] > 0 and r["cuda_graphs"] is False
        assert all(r[k] > 0 for k in ("backbone_ms_per_frame", "flow_ms_per_frame", "codec_ms_per_frame"))
        assert r["weight_gb_per_s"] > 0  # int8 weights counted as int8 values + scales (models.quantize)


def test_capacity_ladder_until_the_first_miss(smoke) -> None:
    records = _records(smoke[0], "capacity")
    for eager in (False, True):
        ladder = [r for r in records if r["eager"] == eager and "concurrency" in r]
        (result,) = [r for r in records if r["eager"] == eager and "streams_held_at_real_time" in r]
        held = [r["concurrency"] for r in ladder if r["held"]]
        assert held == list(SMOKE.capacity[: len(held)])  # climbed in order while every stream kept up
        assert result["streams_held_at_real_time"] == (held[-1] if held else None)
        assert result["first_miss_at"] == next((r["concurrency"] for r in ladder if not r["held"]), None)


def test_other_families_throughput(smoke) -> None:
    records = _records(smoke[0], "families")
    others = {f.name for f in registry.families() if f.write_random is not None} - {"voxtral_tts"}
    assert {(r["family"], r["concurrency"]) for r in records} == {(f, c) for f in others for c in SMOKE.family_concurrency}  # fmt: skip
    for r in records:
        rate = r["tokens_per_s"] if r["unit"] == "tokens" else r["frames_per_s"]
        assert rate > 0 and r["peak_rss_mb"] > 0
