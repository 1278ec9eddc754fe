"""Local media as ``data:`` URLs: the media type from the file name (or its first bytes), the
size checked before anything is read whole.

The media type is looked up in a fixed table of common suffixes first (``mimetypes`` depends on
the machine), then read from the file's first bytes, then asked of ``mimetypes``.

The API takes images, audio, video and PDFs as URLs, ``data:`` URLs included, and publishes no
size limit for them. ``MAX_MEDIA_BYTES`` is this package's own guard: a data URL is a third
larger than the file and travels inside the JSON body of every request (and every retry), so
a larger file is refused with a message that says to host it and pass its URL instead; pass
``max_bytes=`` to move the limit.
"""

from __future__ import annotations

import base64
import mimetypes
import os
from typing import Final, Literal

from ._exceptions import InvalidRequestError

__all__ = ["MAX_MEDIA_BYTES", "MediaKind", "bytes_data_url", "data_url", "file_data_url"]

#: The largest file ``from_file``/``from_bytes`` accept by default: 20 MiB.
MAX_MEDIA_BYTES: Final = 20 * 1024 * 1024

MediaKind = Literal["image", "audio", "video", "pdf"]

# Common types, fixed here: ``mimetypes`` depends on the machine's /etc/mime.types.
_BY_SUFFIX: Final[dict[str, str]] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".heic": "image/heic",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".opus": "audio/opus",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
    ".pdf": "application/pdf",
}

# Magic numbers, for a file whose name says nothing: (offset, bytes, media type).
_MAGIC: Final[tuple[tuple[int, bytes, str], ...]] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (8, b"WEBP", "image/webp"),
    (0, b"%PDF-", "application/pdf"),
    (8, b"WAVE", "audio/wav"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"OggS", "audio/ogg"),
    (8, b"M4A ", "audio/mp4"),
    (4, b"ftyp", "video/mp4"),
    (0, b"\x1aE\xdf\xa3", "video/webm"),
)

_PREFIX: Final[dict[MediaKind, str]] = {
    "image": "image/",
    "audio": "audio/",
    "video": "video/",
    "pdf": "application/pdf",
}


def _sniff(head: bytes) -> str | None:
    for offset, magic, media_type in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return media_type
    return None


def _check_kind(kind: MediaKind, media_type: str, what: str) -> None:
    if not media_type.startswith(_PREFIX[kind]):
        raise InvalidRequestError(
            f"{what}: its media type is {media_type}, not {kind}; use the part for that kind "
            f"(ImagePart, AudioPart, VideoPart, PdfPart) or pass media_type=..."
        )


def _check_size(size: int, max_bytes: int, what: str) -> None:
    if size > max_bytes:
        raise InvalidRequestError(
            f"{what}: {size:,} bytes is more than the {max_bytes:,} allowed in a data URL; "
            "host the file and pass its https:// URL instead, or pass max_bytes= to raise "
            "the limit"
        )


def data_url(data: bytes, media_type: str) -> str:
    """``data:<media_type>;base64,<data>``."""
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def file_data_url(
    path: str | os.PathLike[str],
    kind: MediaKind,
    *,
    media_type: str | None = None,
    max_bytes: int = MAX_MEDIA_BYTES,
) -> str:
    """The ``data:`` URL of a local file of the given kind.

    Raises:
        FileNotFoundError, IsADirectoryError, PermissionError: the file cannot be read.
        InvalidRequestError: larger than ``max_bytes``, of another kind, or of a type that
            cannot be told from its name or its first bytes (then pass ``media_type=``).
    """
    what = os.fspath(path)
    size = os.stat(path).st_size  # before reading: a huge file is refused unread
    _check_size(size, max_bytes, what)
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    _check_size(len(data), max_bytes, what)  # it may have grown since the stat
    if media_type is None:
        suffix = os.path.splitext(what)[1].lower()
        guessed = mimetypes.guess_type(what)[0]
        if guessed == "application/octet-stream":
            guessed = None  # says nothing (".bin"); the content may
        media_type = _BY_SUFFIX.get(suffix) or _sniff(data[:16]) or guessed
        if media_type is None:
            raise InvalidRequestError(
                f"{what}: cannot tell its media type from the name or the content; "
                f"pass media_type=, e.g. media_type={_PREFIX[kind].rstrip('/') + '/...'!r}"
            )
    _check_kind(kind, media_type, what)
    return data_url(data, media_type)


def bytes_data_url(
    data: bytes, kind: MediaKind, *, media_type: str | None, max_bytes: int = MAX_MEDIA_BYTES
) -> str:
    """The ``data:`` URL of media already in memory (the type sniffed when not given).

    Raises:
        InvalidRequestError: larger than ``max_bytes``, of another kind, or of an unknown type.
    """
    what = f"{kind} data"
    _check_size(len(data), max_bytes, what)
    if media_type is None:
        media_type = _sniff(data[:16])
        if media_type is None:
            raise InvalidRequestError(f"{what}: cannot tell its media type; pass media_type=")
    _check_kind(kind, media_type, what)
    return data_url(data, media_type)
