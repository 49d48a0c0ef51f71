"""The OpenAI-compatible HTTP server (``speechserve serve``): ``create_app(settings)`` builds the app.

Needs the ``server`` extra (FastAPI, uvicorn, pydantic-settings, prometheus_client).
"""

from speechserve.server.app import create_app
from speechserve.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
