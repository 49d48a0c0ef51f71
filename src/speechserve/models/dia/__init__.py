"""Dia-1.6B (nari-labs): dialogue TTS — byte-level text encoder, 9-codebook delayed audio decoder with
classifier-free guidance, and the 44.1 kHz Descript Audio Codec."""

from speechserve.models.dia.model import Dia
from speechserve.models.dia.options import DiaOptions

__all__ = ["Dia", "DiaOptions"]
