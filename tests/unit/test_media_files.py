"""``ImagePart.from_file`` (and audio, video, PDF): a data URL with the right media type, and a
clear error above the size limit."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from reka_async import AsyncClient, AudioPart, ImagePart, InvalidRequestError, PdfPart, VideoPart
from reka_async._media import MAX_MEDIA_BYTES
from reka_async.testing import MockRekaServer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
PDF = b"%PDF-1.7\n" + b"\x00" * 32
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 32
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 32
M4A = b"\x00\x00\x00\x18ftypM4A " + b"\x00" * 32


def _decode(url: str) -> tuple[str, bytes]:
    head, _, data = url.partition(",")
    assert head.startswith("data:")
    assert head.endswith(";base64")
    return head[len("data:") : -len(";base64")], base64.b64decode(data)


@pytest.mark.parametrize(
    ("cls", "name", "data", "media_type"),
    [
        (ImagePart, "cat.png", PNG, "image/png"),
        (ImagePart, "cat.JPG", JPEG, "image/jpeg"),
        (ImagePart, "cat.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (AudioPart, "hello.mp3", b"ID3" + b"\x00" * 20, "audio/mpeg"),
        (AudioPart, "hello.wav", WAV, "audio/wav"),
        (VideoPart, "clip.mp4", MP4, "video/mp4"),
        (VideoPart, "clip.mov", MP4, "video/quicktime"),
        (PdfPart, "paper.pdf", PDF, "application/pdf"),
    ],
)
def test_from_file_builds_a_data_url_with_the_media_type(
    tmp_path: Path, cls: type, name: str, data: bytes, media_type: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    part = cls.from_file(path)
    field = part.type
    assert _decode(getattr(part, field)) == (media_type, data)
    assert cls.from_file(str(path)) == part


@pytest.mark.parametrize(
    ("cls", "data", "media_type"),
    [
        (ImagePart, PNG, "image/png"),
        (ImagePart, JPEG, "image/jpeg"),
        (PdfPart, PDF, "application/pdf"),
        (AudioPart, WAV, "audio/wav"),
        (AudioPart, M4A, "audio/mp4"),
        (VideoPart, MP4, "video/mp4"),
    ],
)
def test_a_file_without_a_known_suffix_is_sniffed(
    tmp_path: Path, cls: type, data: bytes, media_type: str
) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    assert _decode(getattr(cls.from_file(path), cls.from_file(path).type))[0] == media_type
    assert _decode(getattr(cls.from_bytes(data), cls.from_bytes(data).type))[0] == media_type


def test_media_type_can_be_given(tmp_path: Path) -> None:
    path = tmp_path / "scan"
    path.write_bytes(b"\x00\x01")
    part = ImagePart.from_file(path, media_type="image/tiff")
    assert part.image_url.startswith("data:image/tiff;base64,")


def test_an_unknown_type_asks_for_media_type(tmp_path: Path) -> None:
    path = tmp_path / "mystery"
    path.write_bytes(b"\x00\x01\x02")
    with pytest.raises(InvalidRequestError, match="pass media_type="):
        ImagePart.from_file(path)
    with pytest.raises(InvalidRequestError, match="pass media_type="):
        AudioPart.from_bytes(b"\x00\x01")


def test_a_file_of_another_kind_says_which_part_to_use(tmp_path: Path) -> None:
    path = tmp_path / "song.mp3"
    path.write_bytes(b"ID3")
    with pytest.raises(
        InvalidRequestError, match=r"song\.mp3: its media type is audio/mpeg, not image"
    ):
        ImagePart.from_file(path)
    with pytest.raises(InvalidRequestError, match="not pdf"):
        PdfPart.from_bytes(PNG)


def test_a_file_above_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    with path.open("wb") as f:
        f.truncate(MAX_MEDIA_BYTES + 1)  # sparse: nothing to read
    with pytest.raises(InvalidRequestError) as info:
        ImagePart.from_file(path)
    message = str(info.value)
    assert f"{MAX_MEDIA_BYTES + 1:,} bytes is more than the {MAX_MEDIA_BYTES:,} allowed" in message
    assert "https://" in message
    assert "max_bytes=" in message


def test_max_bytes_moves_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    path.write_bytes(PNG)
    with pytest.raises(InvalidRequestError, match="allowed in a data URL"):
        ImagePart.from_file(path, max_bytes=10)
    with pytest.raises(InvalidRequestError, match="allowed in a data URL"):
        ImagePart.from_bytes(PNG, max_bytes=10)
    assert ImagePart.from_file(path, max_bytes=len(PNG)).image_url


def test_a_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        VideoPart.from_file(tmp_path / "nope.mp4")


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_a_part_from_a_file_is_sent_on_both_dialects(
    tmp_path: Path, server: MockRekaServer, client: AsyncClient, api: str
) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    part = ImagePart.from_file(path)
    response = await client.chat.create(
        messages=[{"role": "user", "content": [part, {"type": "text", "text": "What is it?"}]}],
        model="reka-flash",
        api=api,  # type: ignore[arg-type]
    )
    assert response.text
    sent = server.requests[-1].body["messages"][0]["content"][0]
    url = sent["image_url"] if api == "native" else sent["image_url"]["url"]
    assert url == part.image_url
