"""Tokenization and request encoding through `mistral_common`."""
