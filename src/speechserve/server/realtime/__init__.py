"""``WS /v1/realtime``: live transcription sessions in OpenAI's and vLLM's event dialects (see ``session.py``)."""
