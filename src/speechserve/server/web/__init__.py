"""The web playground: ``GET /`` and its static files (``static/``, shipped as package data; no build step)."""
