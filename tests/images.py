"""Image files for tests: real small images, and PNGs that claim to be huge."""

from __future__ import annotations

import io
import struct
import zlib

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image


def image_bytes(image_format: str = "PNG", size: tuple[int, int] = (16, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (240, 160, 20)).save(buffer, format=image_format)
    return buffer.getvalue()


def image_upload(
    name: str = "logo.png", image_format: str = "PNG", size: tuple[int, int] = (64, 64)
) -> SimpleUploadedFile:
    """An upload of a real image; its name and declared type are whatever the test says."""
    return SimpleUploadedFile(
        name, image_bytes(image_format, size), content_type=f"image/{image_format.lower()}"
    )


def png_claiming(width: int, height: int) -> bytes:
    """A PNG of a few bytes whose header claims ``width`` by ``height`` pixels."""
    png = bytearray(image_bytes("PNG"))
    png[16:24] = struct.pack(">II", width, height)  # the IHDR chunk's width and height…
    png[29:33] = struct.pack(">I", zlib.crc32(png[12:29]))  # …and its checksum
    return bytes(png)
