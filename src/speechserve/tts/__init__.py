"""Text-to-speech pipelines: prompt building, per-frame generation, streamed codec decoding."""
