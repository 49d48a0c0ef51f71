"""Multipart uploads under a size cap. The request gate (``gate.py``) refuses a body whose declared size is
over ``max_upload_mb`` plus :data:`FORM_OVERHEAD_BYTES` before reading it, and counts the body while it
streams in otherwise, so an oversize upload is refused (413) without being stored whole, whether or not the
client sent ``Content-Length``; :func:`read_upload` checks the file itself against the cap.

Form fields are validated by a pydantic model, as JSON bodies are: a bad field becomes the usual 400 with
``param`` naming it. Array fields arrive as OpenAI's SDK sends them, with bracket keys
(``timestamp_granularities[]=segment``).
"""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile

from speechserve.errors import InputTooLarge, InvalidRequest

M = TypeVar("M", bound=BaseModel)
FORM_OVERHEAD_BYTES = 64 * 1024
"""Room for the other form fields and the multipart framing on top of the file cap."""


def too_large(size: int, limit: int, what: str = "the uploaded file", param: str = "file") -> InputTooLarge:
    """413: ``what`` (``size`` bytes, at least) is over the audio size ``limit``."""
    return InputTooLarge(
        f"{what} is {size / 1e6:.2f} MB; this server accepts audio of at most {limit / 1e6:.2f} MB "
        "(max_upload_mb)",
        param,
    )


async def read_form(request: Request) -> FormData:
    """Parse a multipart body (its size is capped by the request gate). Close the form when done."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidRequest("send the request as multipart/form-data with the audio in a 'file' field")
    return await request.form(max_files=1, max_fields=64)


def form_fields(form: FormData) -> dict[str, object]:
    """Form → dict for validation: bracketed keys (``name[]``) become lists, other keys keep one value."""
    data: dict[str, object] = {}
    for key in form:
        values = form.getlist(key)
        data[key] = list(values) if key.endswith("[]") else values[-1]
    return data


def validate_form(model: type[M], form: FormData) -> M:
    """The form's fields as ``model`` (its ``file`` field excluded); 400 naming the bad field otherwise."""
    data = {k: v for k, v in form_fields(form).items() if k != "file"}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


async def read_upload(form: FormData, max_bytes: int) -> tuple[bytes, str]:
    """The ``file`` field's bytes and file name; InvalidRequest when missing, InputTooLarge when too big."""
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequest("the audio file is missing: send it in a multipart 'file' field", "file")
    if upload.size is not None and upload.size > max_bytes:
        raise too_large(upload.size, max_bytes)
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise too_large(len(data), max_bytes)
    return data, upload.filename or ""
