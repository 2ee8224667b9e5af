"""What an uploaded file really is, from its first bytes (never its name or declared type): PNG, JPEG or WebP, with
its dimensions read from the header. Anything else — SVG included, which can carry scripts — is refused."""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAX_SIDE = 10_000  # pixels: larger is no campaign picture, and a decompression bomb in waiting
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
# JPEG start-of-frame markers (baseline, progressive…); C4, C8 and CC are other segments.
SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class ImageRefused(ValueError):
    """`message` is French, for the form."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Sniffed:
    content_type: str
    width: int
    height: int


def _png(data: bytes) -> tuple[int, int] | None:
    # The signature, then the IHDR chunk first: length 13, type, width, height.
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg(data: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2:position + 4])
        if length < 2:
            return None
        if marker in SOF_MARKERS:
            if position + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[position + 5:position + 9])
            return width, height
        position += 2 + length
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def sniff(data: bytes) -> Sniffed:
    """Raises `ImageRefused` unless `data` is a PNG, JPEG or WebP image of sensible dimensions."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        content_type, size = "image/png", _png(data)
    elif data.startswith(b"\xff\xd8\xff"):
        content_type, size = "image/jpeg", _jpeg(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        content_type, size = "image/webp", _webp(data)
    else:
        raise ImageRefused("Ce fichier n'est pas une image PNG, JPEG ou WebP (les autres formats, dont SVG, ne "
                           "sont pas acceptés).")
    if size is None:
        raise ImageRefused("Cette image est illisible ou abîmée : enregistrez-la à nouveau et réessayez.")
    width, height = size
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ImageRefused(f"Cette image mesure {width} × {height} pixels : chaque côté doit faire de 1 à "
                           f"{MAX_SIDE} pixels.")
    return Sniffed(content_type, width, height)
