"""Command-line mistakes: each is one line on stderr and exit status 2, found before any model loads where it
can be; and `--help` answers without importing torch."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import speechserve
from speechserve.testing.cli import one_error_line

SRC = Path(speechserve.__file__).parent.parent


def _no_internal_names(message: str) -> None:
    for internal in ("Pipeline", "VoxtralASR", "VoxtralTTS", "AttributeError", "FileNotFoundError"):
        assert internal not in message


def test_speak_with_a_speech_to_text_model(capsys, tiny_asr_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.wav"
    err = one_error_line(capsys, ["speak", "Hi.", "--model", str(tiny_asr_checkpoint), "-o", str(out)])
    assert "cannot speak" in err and "speechserve transcribe" in err
    _no_internal_names(err)
    assert not out.exists()


def test_voices_of_a_speech_to_text_model(capsys, tiny_asr_checkpoint: Path) -> None:
    err = one_error_line(capsys, ["voices", "--model", str(tiny_asr_checkpoint)])
    assert "voxtral_asr model (chat, transcription)" in err and "cannot list preset voices" in err
    _no_internal_names(err)


def test_transcribe_with_a_speech_model(capsys, tiny_checkpoint: Path, tmp_path: Path) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF")
    err = one_error_line(capsys, ["transcribe", str(audio), "--model", str(tiny_checkpoint)])
    assert "cannot transcribe" in err and "speechserve speak" in err


def test_model_kind_is_refused_before_its_weights_are_read(
    capsys, tiny_asr_checkpoint: Path, tmp_path: Path
) -> None:
    fake = tmp_path / "asr"  # the real params.json over weights that would fail to load
    fake.mkdir()
    (fake / "params.json").write_bytes((tiny_asr_checkpoint / "params.json").read_bytes())
    (fake / "consolidated.safetensors").write_bytes(b"not safetensors")
    err = one_error_line(capsys, ["speak", "Hi.", "--model", str(fake), "-o", str(tmp_path / "x.wav")])
    assert "cannot speak" in err


def test_missing_ref_audio(capsys, tiny_checkpoint: Path, tmp_path: Path) -> None:
    ref = tmp_path / "me.wav"
    argv = [
        "speak",
        "Hi.",
        "--model",
        str(tiny_checkpoint),
        "--ref-audio",
        str(ref),
        "-o",
        str(tmp_path / "x.wav"),
    ]
    err = one_error_line(capsys, argv)
    assert f"--ref-audio {ref} does not exist" in err
    _no_internal_names(err)


@pytest.mark.parametrize("command", ["speak", "transcribe"])
def test_output_into_a_missing_directory_is_refused_before_loading(
    capsys, tmp_path: Path, command: str
) -> None:
    # the model does not exist either: the output is what is checked first, in well under a model load
    out = tmp_path / "missing" / ("out.wav" if command == "speak" else "out.srt")
    audio = tmp_path / "talk.wav"
    audio.write_bytes(b"RIFF")
    first = ["Hi."] if command == "speak" else [str(audio)]
    start = time.perf_counter()
    err = one_error_line(capsys, [command, *first, "--model", str(tmp_path / "no-model"), "-o", str(out)])
    assert time.perf_counter() - start < 5
    assert f"directory {out.parent} does not exist" in err and "no-model" not in err


def test_ref_audio_and_output_format_are_checked_before_loading(capsys, tmp_path: Path) -> None:
    no_model = str(tmp_path / "no-model")
    err = one_error_line(
        capsys, ["speak", "Hi.", "--model", no_model, "--ref-audio", str(tmp_path / "r.wav")]
    )
    assert "--ref-audio" in err and "no-model" not in err
    err = one_error_line(capsys, ["speak", "Hi.", "--model", no_model, "-o", str(tmp_path / "x.xyz")])
    assert "Cannot tell the audio format" in err and ".mp3" in err
    err = one_error_line(capsys, ["speak", "Hi.", "--model", no_model, "-o", str(tmp_path)])
    assert "is a directory" in err
    audio = tmp_path / "talk.wav"
    audio.write_bytes(b"RIFF")
    err = one_error_line(
        capsys, ["transcribe", str(audio), "--model", no_model, "-o", str(tmp_path / "t.doc")]
    )
    assert "cannot tell the format from .doc" in err and "--format" in err


def test_bad_device_is_one_line(capsys, tiny_checkpoint: Path) -> None:
    err = one_error_line(capsys, ["voices", "--model", str(tiny_checkpoint), "--device", "toaster"])
    assert "--device toaster" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--family", "nope"], "no such family writes random checkpoints; choose one of voxtral_tts"),
        (["--family", "voxtral_asr", "--with-encoder"], "--with-encoder does not apply to voxtral_asr"),
    ],
)
def test_random_checkpoint_mistakes(capsys, tmp_path: Path, argv: list[str], message: str) -> None:
    target = tmp_path / "ck"
    err = one_error_line(capsys, ["dev", "random-checkpoint", str(target), *argv])
    assert message in err


def test_random_checkpoint_into_a_file(capsys, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    err = one_error_line(capsys, ["dev", "random-checkpoint", str(target)])
    assert "is a file" in err


def test_console_script_reports_one_line(tmp_path: Path) -> None:
    """Through `python -m speechserve`: exit 2, one line, and no traceback."""
    out = tmp_path / "nowhere" / "out.mp3"
    cmd = [
        sys.executable,
        "-m",
        "speechserve",
        "speak",
        "Hi.",
        "--model",
        str(tmp_path / "m"),
        "-o",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"speechserve: error: -o {out}: directory {out.parent} does not exist; create it first or choose another"
    ]


_HEAVY = "('torch', 'numpy', 'speechserve.models', 'speechserve.loading', 'speechserve.registry')"


def _imports_after(argv: list[str], stub_package: bool) -> list[str]:
    """Parse ``argv`` (help or an argument error) in a fresh interpreter; the heavy modules it imported."""
    stub = (
        f"import types; pkg = types.ModuleType('speechserve'); pkg.__path__ = [{str(SRC / 'speechserve')!r}]; "
        "sys.modules['speechserve'] = pkg; "
        if stub_package
        else ""
    )
    code = (
        f"import sys; {stub}from speechserve import cli\n"
        f"try:\n    cli.main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print(' '.join(m for m in {_HEAVY} if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()[-1].split()


@pytest.mark.parametrize(
    "argv", [["--help"], ["speak", "--help"], ["dev", "random-checkpoint", "--help"], ["speak"]]
)
def test_the_parser_imports_nothing_heavy(argv: list[str]) -> None:
    """The command-line modules alone (package `__init__` bypassed) import no torch, numpy or model code to
    answer `--help` or an argument error."""
    assert _imports_after(argv, stub_package=True) == []


def test_help_does_not_import_torch() -> None:
    assert _imports_after(["--help"], stub_package=False) == []
