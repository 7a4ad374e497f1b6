"""Validation shared by the models: names that show what they say, and uploaded logos that are
real raster images of an allowed format and size."""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from PIL import Image

from .logos import (
    LOGO_FORMATS,
    LOGO_MAX_BYTES,
    LOGO_MAX_PIXELS,
    LOGO_MAX_SIDE,
    NOT_AN_IMAGE_ERRORS,
    open_image,
)

#: Unicode categories of characters a name must not contain: controls (a line break would end
#: an email header the name is put in), format characters (zero-width spaces and joiners,
#: text-direction overrides and isolates, the soft hyphen, the byte-order mark: invisible, or
#: reordering what is shown around them), line and paragraph separators, surrogates,
#: private-use and unassigned code points (no agreed glyph).
FORBIDDEN_IN_NAMES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}
#: Letters that draw nothing (Hangul fillers) and the invisible combining grapheme joiner.
INVISIBLE_IN_NAMES = {"\u034f", "\u115f", "\u1160", "\u3164", "\uffa0"}


def validate_name(value: str) -> None:
    """Refuse names with control, invisible or text-direction characters.

    A name is shown to other organizations and put in email subjects; what it contains must be
    what a reader sees, so two names that look the same are the same name.
    """
    for character in value or "":
        if character in INVISIBLE_IN_NAMES or unicodedata.category(character) in FORBIDDEN_IN_NAMES:
            raise ValidationError(
                "This cannot contain line breaks, tabs or other control characters, nor "
                "invisible or text-direction characters. It contains %(character)s: retype it "
                "without.",
                code="invisible_character",
                params={"character": _describe(character)},
            )


def _describe(character: str) -> str:
    if character in "\r\n\x0b\x0c\x85\u2028\u2029":
        return "a line break"
    if character == "\t":
        return "a tab"
    code = f"U+{ord(character):04X}"
    name = unicodedata.name(character, "")
    return f"{code} ({name.lower()})" if name else code


def validate_logo(upload) -> None:
    """Refuse anything that is not a PNG, JPEG or WebP image of at most 2 MB (and at most
    ``LOGO_MAX_PIXELS``: a few bytes can claim a gigapixel image).

    The file's bytes are checked with Pillow (its name and declared content type are not
    trusted), so an SVG or a renamed document is refused whatever it is called.
    """
    if getattr(upload, "_committed", False):
        return  # already stored: it was checked when it was uploaded
    if upload.size > LOGO_MAX_BYTES:
        raise ValidationError(
            "The logo is %(size)s; the largest allowed is 2 MB.",
            code="logo_too_large",
            params={"size": filesizeformat(upload.size)},
        )
    try:
        with open_image(upload) as image:
            image_format, pixels = image.format, image.width * image.height
            image.verify()
    except Image.DecompressionBombError as error:
        raise _too_many_pixels() from error
    except NOT_AN_IMAGE_ERRORS as error:
        raise ValidationError(
            "This file is not an image we can use. Upload a PNG, JPEG or WebP logo "
            "(SVG and other formats are not accepted).",
            code="logo_not_image",
        ) from error
    if pixels > LOGO_MAX_PIXELS:
        raise _too_many_pixels()
    if image_format not in LOGO_FORMATS:
        raise ValidationError(
            "%(format)s images are not accepted. Upload a PNG, JPEG or WebP logo.",
            code="logo_format",
            params={"format": image_format},
        )


def _too_many_pixels() -> ValidationError:
    return ValidationError(
        "This image has too many pixels to be a logo (at most %(side)s by %(side)s). Upload "
        "a smaller PNG, JPEG or WebP logo.",
        code="logo_too_many_pixels",
        params={"side": LOGO_MAX_SIDE},
    )
