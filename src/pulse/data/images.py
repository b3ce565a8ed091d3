"""Helpers the readers share (image bytes, safe paths, delimited text).

Every failure becomes a :class:`DataError` that names the file, row and field.
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path, PurePosixPath, PureWindowsPath

from PIL import Image, UnidentifiedImageError

from pulse.errors import DataError

Row = int | str | None


def check_image(data: object, file: str | Path, *, row: Row = None, field: str = "image") -> bytes:
    """Return ``data`` if it is the bytes of an image file PIL can decode, else raise."""
    if not isinstance(data, bytes | bytearray) or not data:
        raise DataError(file, "expected encoded image bytes, found none", row=row, field=field)
    try:
        with Image.open(io.BytesIO(data)) as img:
            # verify() checks the file structure without decoding every pixel: fast on 8k images.
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(
            file, f"the image bytes do not decode as an image ({exc})", row=row, field=field
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
    root = Path(root).resolve()
    path = (root / rel.replace("\\", "/")).resolve()
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
    return check_image(path.read_bytes(), file, row=row, field=field)
