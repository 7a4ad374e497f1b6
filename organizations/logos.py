"""Logos: the image formats accepted, how a file's format is read, the names logos are stored
under, and the model field that applies those names whatever path saves a logo.

A logo is served publicly, so nothing about it may come from the uploader but its pixels: the
format is read from the file's bytes, and the stored name (hence the extension a web server or
browser would go by) is chosen here, from that format.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models.fields.files import ImageField, ImageFieldFile
from PIL import Image, UnidentifiedImageError

LOGO_MAX_BYTES = 2 * 1024 * 1024
#: Far more than a logo needs, far less than Pillow's own limit of some 89 million pixels: a
#: file of a few bytes can claim any size, and decoding what it claims takes memory and time.
LOGO_MAX_SIDE = 4096
LOGO_MAX_PIXELS = LOGO_MAX_SIDE * LOGO_MAX_SIDE


@dataclass(frozen=True)
class LogoFormat:
    label: str
    extension: str
    content_type: str


#: Pillow's format name → how a logo of that format is named and served.
LOGO_FORMATS = {
    "PNG": LogoFormat("PNG", "png", "image/png"),
    "JPEG": LogoFormat("JPEG", "jpg", "image/jpeg"),
    "WEBP": LogoFormat("WebP", "webp", "image/webp"),
}

#: What Pillow raises for a file it cannot read as an image.
NOT_AN_IMAGE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError)


@contextmanager
def open_image(file) -> Iterator[Image.Image]:
    """The file opened by Pillow (headers only), rewound before and after.

    Pillow merely warns about an image between its pixel limit and twice that; whether the
    warning stops anything depends on the process's warning filters. It is silenced here so
    that the outcome never does: callers compare the declared size with ``LOGO_MAX_PIXELS``
    themselves. Beyond twice the limit Pillow still raises ``DecompressionBombError``.
    """
    file.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                yield image
    finally:
        file.seek(0)


def logo_format(file) -> LogoFormat | None:
    """The accepted format the file's bytes are in, or None (not an image, or another format)."""
    try:
        with open_image(file) as image:
            return LOGO_FORMATS.get(image.format)
    except (Image.DecompressionBombError, *NOT_AN_IMAGE_ERRORS):
        return None


def stored_logo_name(content) -> str:
    """A fresh, unguessable file name with the extension of the format ``content`` is in."""
    image_format = logo_format(content)
    if image_format is None:
        raise ValidationError("A logo must be a PNG, JPEG or WebP image.", code="logo_not_image")
    return f"{uuid.uuid4().hex}.{image_format.extension}"


class LogoFieldFile(ImageFieldFile):
    def save(self, name, content, save=True) -> None:
        # Every way a logo is stored passes here (a form, the admin, the copy an invitation
        # makes, the shell), so the name offered by the caller is never used.
        super().save(stored_logo_name(content), content, save)

    save.alters_data = True


class LogoField(ImageField):
    """An image field whose files are stored under a server-chosen name (see LogoFieldFile)."""

    attr_class = LogoFieldFile
