"""Audio I/O for speechserve: decoding input audio, resampling / time stretching, and encoding output.

Built on PyAV (FFmpeg) and soxr. Submodules: ``formats`` (output format table), ``encode`` (one-shot and
streaming encoders), ``decode`` (bytes / files / base64 to float32 arrays), ``resample`` (soxr resampling
and pitch-preserving tempo change, one-shot and streamed), ``crossfade`` (splicing segments).
"""

from speechserve.audio.crossfade import StreamingCrossfade, crossfade_join
from speechserve.audio.decode import decode_audio, decode_base64_audio, decode_pcm
from speechserve.audio.encode import StreamingEncoder, encode_audio, write_audio_file
from speechserve.audio.formats import (
    AUDIO_FORMATS,
    FORMATS,
    AudioFormat,
    FormatSpec,
    content_type,
    format_from_path,
    get_format,
)
from speechserve.audio.resample import (
    MAX_SPEED,
    MIN_SPEED,
    StreamingResampler,
    StreamingTimeStretch,
    resample,
    time_stretch,
)

__all__ = [
    "AUDIO_FORMATS",
    "FORMATS",
    "MAX_SPEED",
    "MIN_SPEED",
    "AudioFormat",
    "FormatSpec",
    "StreamingCrossfade",
    "StreamingEncoder",
    "StreamingResampler",
    "StreamingTimeStretch",
    "content_type",
    "crossfade_join",
    "decode_audio",
    "decode_base64_audio",
    "decode_pcm",
    "encode_audio",
    "format_from_path",
    "get_format",
    "resample",
    "time_stretch",
    "write_audio_file",
]
