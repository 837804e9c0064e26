"""What a request to `lenet serve` carries: its body, read within a byte limit, and the image files in it
(a raw body or multipart files); and the one error a route raises for a request it cannot serve."""

from __future__ import annotations

import base64
import io

from fastapi import Request
from PIL import Image
from starlette.requests import ClientDisconnect

from lenet_cli.core.config import INVERT_CHOICES
from lenet_cli.core.reading import MiB

MAX_BODY_BYTES = 16 * MiB
MAX_FILES = 64  # images in one multipart request
# Content types of a body that is the image file itself; curl --data-binary sends the form type.
RAW_BODY_TYPES = ("application/octet-stream", "application/x-www-form-urlencoded")


class ClientError(Exception):
    """A request the server cannot serve: answered with `status` and {"error": message}."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def busy(why: str) -> ClientError:
    """503 with Retry-After: work past a bound is refused at once, never queued."""
    return ClientError(503, f"the server is busy ({why}); try again shortly", {"Retry-After": "1"})


def check_invert(invert: str) -> None:
    """`?invert=` as every image route takes it: auto, yes or no, else 422."""
    if invert not in INVERT_CHOICES:
        raise ClientError(422, f"invert must be one of {', '.join(INVERT_CHOICES)}")


def refuse_lone_failure(errors: list[str | None]) -> None:
    """One image that cannot be read fails its request (422, with why); among several, each image's answer
    says so for itself."""
    if len(errors) == 1 and errors[0]:
        raise ClientError(422, errors[0])


async def read_body(request: Request) -> bytearray:
    """The request body, refused (413) past MAX_BODY_BYTES before more is read into memory. One buffer
    that grows (no list of chunks joined at the end): a body is held once, as the memory budget counts."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ClientError(413, f"the body is over the {MAX_BODY_BYTES // MiB} MiB limit")
    body = bytearray()
    try:
        async for chunk in request.stream():
            if len(body) + len(chunk) > MAX_BODY_BYTES:
                raise ClientError(413, f"the body is over the {MAX_BODY_BYTES // MiB} MiB limit")
            body += chunk
    except ClientDisconnect:  # gone, or cut off for being too slow: nobody hears the answer
        raise ClientError(400, "the client went away before its body arrived") from None
    return body


async def read_uploads(request: Request) -> list[tuple[str, bytes | bytearray]]:
    """(name, bytes) of each image: the raw body (named "-", as `lenet predict -`), or multipart files."""
    content_type = (
        request.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
    )
    body = await read_body(request)
    if content_type == "multipart/form-data":
        request._body = bytes(body)  # starlette parses the form from the body already read (and capped)
        try:
            form = await request.form(max_files=MAX_FILES, max_part_size=MAX_BODY_BYTES)
        except Exception as error:  # python-multipart's and starlette's parse errors
            raise ClientError(400, f"cannot read the multipart form ({error})") from None
        files = [value for _, value in form.multi_items() if hasattr(value, "read")]
        if not files:
            raise ClientError(400, "the form holds no files; send images as multipart files")
        return [(upload.filename or "-", await upload.read()) for upload in files]
    if not (content_type.startswith("image/") or content_type in RAW_BODY_TYPES):
        raise ClientError(
            415, f"send an image (image/*, application/octet-stream or multipart), not {content_type}"
        )
    if not body:
        raise ClientError(400, "the body is empty; send an image file")
    return [("-", body)]


def png_data_url(digit: bytes) -> str:
    """The 28x28 network input as a PNG data URL, for the page to show what the network saw."""
    buffer = io.BytesIO()
    Image.frombytes("L", (28, 28), digit).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
