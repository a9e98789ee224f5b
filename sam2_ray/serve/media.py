"""What requests bring in: image files (base64 or a URI) decoded to RGB arrays, and media URIs resolved to
local paths. The server reads only local paths and file:// URIs, under `media_root` when one is set."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
from PIL import Image

from .errors import RequestError


def local_path(uri: str, media_root: str | None) -> Path:
    """A path or file:// URI -> an existing local path (422 for other schemes, 403 outside media_root, 404 if
    missing)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
    elif parsed.scheme == "":
        path = Path(uri)
    else:
        raise RequestError(422, f"unsupported URI scheme {parsed.scheme!r}: give a local path or a file:// URI "
                                "that the server can read")
    path = path.expanduser().resolve()
    if media_root is not None and not path.is_relative_to(Path(media_root).expanduser().resolve()):
        raise RequestError(403, f"{uri} lies outside the server's media root")
    if not path.exists():
        raise RequestError(404, f"{uri}: no such file or folder on the server")
    return path


def image_bytes(encoded: str | None, uri: str | None, media_root: str | None) -> bytes:
    """The image file's bytes, from base64 text or a URI."""
    if encoded is not None:
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(422, "image is not valid base64") from None
    path = local_path(uri, media_root)
    if not path.is_file():
        raise RequestError(422, f"{uri} is not a file")
    return path.read_bytes()


def image_id(data: bytes) -> str:
    """The content hash that keys the embedding cache: sha256 of the file bytes (clients can compute it too)."""
    return hashlib.sha256(data).hexdigest()


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """File bytes -> H x W x 3 uint8 RGB; 413 above max_pixels, 422 for anything PIL cannot read."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > max_pixels:
                raise RequestError(413, f"image is {im.width}x{im.height}: more than the {max_pixels} pixels "
                                        "this server accepts")
            return np.asarray(im.convert("RGB"))
    except RequestError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as error:
        raise RequestError(422, f"image cannot be decoded: {error}") from None
