"""Helpers the readers share (image bytes, safe paths, delimited text).

Every failure becomes a :class:`DataError` that names the file, row and field.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from pathlib import Path, PurePosixPath, PureWindowsPath

from PIL import Image, UnidentifiedImageError

from pulse.errors import DataError

Row = int | str | None


# The most pixels one image may have: PIL's own decompression-bomb limit, checked from the
# header before anything is decoded (a PNG of a few KiB can claim 30000 x 30000 pixels).
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


def check_image(data: object, file: str | Path, *, row: Row = None, field: str = "image") -> bytes:
    """Return ``data`` if it is the bytes of an image that decodes as evaluation decodes it
    (every pixel, to RGB: :func:`pulse.data.schema.decode_image`) and whose structure is
    sound (chunk checksums, end marker), else raise. The structure check alone passed a PNG
    whose chunks were sound and whose pixel stream was not."""
    if not isinstance(data, bytes | bytearray) or not data:
        raise DataError(file, "expected encoded image bytes, found none", row=row, field=field)
    try:
        with warnings.catch_warnings():
            # Over the limit is refused below in one line: PIL's warning would be a second.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
        with img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise DataError(
                    file,
                    f"the image is {width}x{height} pixels, "
                    f"more than the {MAX_PIXELS} pixels allowed",
                    row=row,
                    field=field,
                )
            img.convert("RGB")
        with Image.open(io.BytesIO(data)) as again:
            again.verify()  # a cut-off end decodes, but the file is damaged
    except DataError:
        raise
    except Image.DecompressionBombError:  # twice the limit: PIL refuses it at open
        raise DataError(
            file,
            f"the image claims more than twice the {MAX_PIXELS} pixels allowed",
            row=row,
            field=field,
        ) from None
    except UnidentifiedImageError:
        raise DataError(
            file,
            "the image bytes do not decode as an image (not a known image format)",
            row=row,
            field=field,
        ) from None
    except Exception as exc:  # PIL raises many types for a bad stream (OSError, zlib, ...)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            file, f"the image bytes do not decode as an image ({reason})", row=row, field=field
        ) from None
    return bytes(data)


def b64_image(text: str, file: str | Path, *, row: Row = None, field: str = "image") -> bytes:
    """Decode a base64 string (whitespace allowed) and check that it holds an image."""
    compact = "".join(text.split())
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DataError(file, f"expected base64 image data ({exc})", row=row, field=field) from None
    return check_image(data, file, row=row, field=field)


def b64_encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def check_relative(rel: str, file: str | Path, *, row: Row = None, field: str = "image") -> str:
    """Return ``rel`` if it is a relative path that stays inside its dataset root.

    Both separators are checked so a Windows-written CSV cannot escape on Linux either.
    """
    if not rel or not rel.strip():
        raise DataError(
            file, "expected a relative image path, found an empty value", row=row, field=field
        )
    for pure in (PurePosixPath(rel), PureWindowsPath(rel)):
        if pure.is_absolute() or pure.anchor:
            raise DataError(
                file,
                f"image path {rel!r} is absolute: expected a path relative to the dataset root",
                row=row,
                field=field,
            )
        if ".." in pure.parts:
            raise DataError(
                file, f"image path {rel!r} escapes the dataset root ('..')", row=row, field=field
            )
    return rel


def resolve_under(
    root: str | Path, rel: str, file: str | Path, *, row: Row = None, field: str = "image"
) -> Path:
    """Resolve ``rel`` under ``root``; symlinks that lead outside the root are refused too."""
    check_relative(rel, file, row=row, field=field)
    try:
        root = Path(root).resolve()
        path = (root / rel.replace("\\", "/")).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop: RuntimeError before Python 3.13
        raise DataError(
            file, f"image path {rel!r} cannot be resolved ({exc})", row=row, field=field
        ) from None
    if not path.is_relative_to(root):
        raise DataError(
            file,
            f"image path {rel!r} resolves outside the dataset root {root}",
            row=row,
            field=field,
        )
    return path


def read_image_file(
    root: str | Path, rel: str, file: str | Path, *, row: Row = None, field: str = "image"
) -> bytes:
    """Read and check the image at ``root/rel``."""
    path = resolve_under(root, rel, file, row=row, field=field)
    if not path.is_file():
        raise DataError(file, f"image file not found: {path}", row=row, field=field)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(file, f"image file {path}: {exc.strerror}", row=row, field=field) from None
    return check_image(data, file, row=row, field=field)
