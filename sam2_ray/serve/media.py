"""What requests bring in: image files (raw bytes, base64 or a URI) decoded to RGB arrays, and media URIs resolved
to local paths. The server reads only local paths and file:// URIs, under `media_root` when one is set.

A path comes from a client, so every way it can be unusable is a `RequestError` that names the problem, found
here before anything opens it: a NUL byte or percent escapes that are not UTF-8 (which the OS calls would raise
as ValueError / a silently replaced character), a name too long for the file system, a symlink loop, a folder,
device, FIFO or socket where a file is needed (a FIFO would block the reader, /dev/zero never ends), no
permission."""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import io
import os
import stat
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
from PIL import Image

from .errors import RequestError

SHOWN_CHARS = 160  # of a client's path in a message: a 4 KB path is not repeated back whole

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


def shown(uri: str) -> str:
    """`uri` as quoted in an error message: repr (a NUL or control character stays visible), shortened."""
    return repr(uri if len(uri) <= SHOWN_CHARS else uri[: SHOWN_CHARS // 2] + "..." + uri[-SHOWN_CHARS // 2 :])


def _requested_path(uri: str) -> Path:
    """The path a URI names, as given (not yet resolved); 422 for what no local file can be named by."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise RequestError(422, f"{shown(uri)} names a file on host {parsed.netloc!r}: file:// URIs must be "
                                    "local (file:///path)")
        try:
            text = unquote(parsed.path, errors="strict")
        except UnicodeDecodeError:
            raise RequestError(422, f"{shown(uri)}: its percent escapes are not UTF-8") from None
    elif parsed.scheme == "":
        text = uri
    else:
        raise RequestError(422, f"unsupported URI scheme {parsed.scheme!r}: give a local path or a file:// URI "
                                "that the server can read")
    if "\x00" in text:
        raise RequestError(422, f"{shown(uri)}: a path cannot contain a NUL byte")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(422, f"{shown(uri)}: the path is not valid UTF-8") from None
    return Path(text)


def local_path(uri: str, media_root: str | None, folder_ok: bool = False) -> Path:
    """A path or file:// URI -> the resolved path of an existing regular file (or folder, with `folder_ok`) the
    server may read. 404 if missing, 403 outside media_root or without permission, 422 for anything else that
    makes it unusable (see the module docstring)."""
    try:
        path = _requested_path(uri).expanduser().resolve()
    except RuntimeError as error:  # a symlink loop, or ~user of no user
        raise RequestError(422, f"{shown(uri)}: {error}") from None
    if media_root is not None and not path.is_relative_to(Path(media_root).expanduser().resolve()):
        raise RequestError(403, f"{shown(uri)} lies outside the server's media root")
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise RequestError(404, f"{shown(uri)}: no such file or folder on the server") from None
    except OSError as error:
        raise unreadable(uri, error) from None
    if stat.S_ISREG(mode) or (folder_ok and stat.S_ISDIR(mode)):
        if not os.access(path, os.R_OK | (os.X_OK if stat.S_ISDIR(mode) else 0)):
            raise unreadable(uri, PermissionError(errno.EACCES, "Permission denied"))
        return path
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    wanted = "a file or a frame folder" if folder_ok else "a file"
    raise RequestError(422, f"{shown(uri)} is {kind}: give {wanted}")


def unreadable(uri: str, error: OSError) -> RequestError:
    """The 4xx for an OS error on a client's path: 403 for no permission, 422 naming the cause otherwise."""
    if isinstance(error, PermissionError):
        return RequestError(403, f"{shown(uri)}: the server has no permission to read it")
    if error.errno == errno.ENAMETOOLONG:
        return RequestError(422, f"{shown(uri)}: a file or folder name in the path is too long for the file system")
    return RequestError(422, f"{shown(uri)} cannot be read: {error.strerror or error}")


def image_bytes(encoded: str | None, uri: str | None, media_root: str | None, max_bytes: int) -> bytes:
    """The image file's bytes, from base64 text or a URI; 413 for a file over `max_bytes` (the request limit: a
    file the server reads is held to the size a client could send)."""
    if encoded is not None:
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(422, "image is not valid base64") from None
    path = local_path(uri, media_root)
    try:
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)  # bounded: st_size says 0 for /proc files of any length
    except OSError as error:
        raise unreadable(uri, error) from None
    if len(data) > max_bytes:
        raise RequestError(413, f"{shown(uri)} is larger than this server's limit of {max_bytes / 2**20:g} MiB per "
                                "image (limits.max_request_mb)")
    return data


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
