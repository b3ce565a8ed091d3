"""Procedural images: portraits whose identity is visible in the pixels, event scenes with a
person in them, and simple shape pictures for general visual skills.

Everything is drawn at 4x and downsampled (smooth edges), from explicit random generators, so
the same seed gives the same pixels.
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from pulse.world.vocab import COLOURS

IMAGE_SIZE = 64
_SS = 4  # supersampling factor

_PALETTE: dict[str, tuple[int, int, int]] = {
    # backgrounds
    "sky": (150, 200, 240),
    "mint": (170, 230, 200),
    "sand": (230, 215, 170),
    "rose": (240, 180, 190),
    "lilac": (200, 180, 235),
    "slate": (110, 125, 140),
    "peach": (250, 200, 160),
    "olive": (160, 170, 90),
    # skin
    "porcelain": (250, 225, 210),
    "beige": (235, 200, 165),
    "tan": (205, 160, 115),
    "brown": (150, 100, 65),
    "umber": (95, 60, 40),
    # hair
    "black": (25, 25, 25),
    "chestnut": (110, 60, 30),
    "blond": (235, 205, 110),
    "auburn": (165, 55, 35),
    "grey": (150, 150, 150),
    "white": (245, 245, 245),
    "teal": (30, 150, 150),
    # eyes
    "dark": (40, 30, 25),
    "blue": (40, 90, 210),
    "green": (40, 150, 60),
    "amber": (210, 140, 20),
    # shirts
    "red": (205, 35, 35),
    "navy": (30, 40, 110),
    "yellow": (240, 205, 40),
    "orange": (240, 130, 30),
    "violet": (130, 60, 190),
}


def _c(name: str) -> tuple[int, int, int]:
    return _PALETTE[name]


def draw_portrait(face: dict[str, str], variant: int, rng: random.Random) -> Image.Image:
    """A head-and-shoulders portrait. Variant 0 is the canonical rendering; other variants
    change pose (offset, tilt), scale, lighting and add noise, but never the features."""
    s = IMAGE_SIZE * _SS
    img = Image.new("RGB", (s, s), _c(face["background"]))
    d = ImageDraw.Draw(img)
    u = s / 64  # one unit of the 64-px design grid

    # shoulders / shirt
    d.ellipse([10 * u, 46 * u, 54 * u, 80 * u], fill=_c(face["shirt"]))
    # long hair falls behind the head
    hair = _c(face["hair_colour"])
    if face["hair_style"] == "long":
        d.rectangle([16 * u, 18 * u, 48 * u, 50 * u], fill=hair)
    # head
    head = {
        "round": [18 * u, 12 * u, 46 * u, 44 * u],
        "oval": [20 * u, 9 * u, 44 * u, 46 * u],
        "square": [18 * u, 12 * u, 46 * u, 44 * u],
    }[face["face_shape"]]
    if face["face_shape"] == "square":
        d.rounded_rectangle(head, radius=4 * u, fill=_c(face["skin"]))
    else:
        d.ellipse(head, fill=_c(face["skin"]))
    top = head[1]
    # hair on top
    style = face["hair_style"]
    if style in ("short", "long"):
        d.chord([head[0], top - 2 * u, head[2], top + 14 * u], 180, 360, fill=hair)
    elif style == "spiky":
        for k in range(5):
            x = head[0] + (k + 0.5) * (head[2] - head[0]) / 5
            d.polygon(
                [(x - 3 * u, top + 4 * u), (x, top - 6 * u), (x + 3 * u, top + 4 * u)], fill=hair
            )
    elif style == "bun":
        d.chord([head[0], top - 1 * u, head[2], top + 10 * u], 180, 360, fill=hair)
        d.ellipse([27 * u, top - 9 * u, 37 * u, top + 1 * u], fill=hair)
    # eyes
    eye = _c(face["eyes"])
    for x in (26, 38):
        d.ellipse([(x - 3) * u, 25 * u, (x + 3) * u, 31 * u], fill=(255, 255, 255))
        d.ellipse([(x - 1.6) * u, 26.4 * u, (x + 1.6) * u, 29.6 * u], fill=eye)
    # mouth
    mouth = face["mouth"]
    if mouth == "smile":
        d.arc([26 * u, 31 * u, 38 * u, 39 * u], 20, 160, fill=(120, 30, 30), width=int(1.5 * u))
    elif mouth == "flat":
        d.line([27 * u, 37 * u, 37 * u, 37 * u], fill=(120, 30, 30), width=int(1.5 * u))
    else:
        d.ellipse([29 * u, 34 * u, 35 * u, 40 * u], fill=(90, 20, 20))
    # accessory
    acc = face["accessory"]
    if acc == "glasses":
        for x in (26, 38):
            d.ellipse(
                [(x - 4.5) * u, 23.5 * u, (x + 4.5) * u, 32.5 * u],
                outline=(20, 20, 20),
                width=int(1.2 * u),
            )
        d.line([30.5 * u, 28 * u, 33.5 * u, 28 * u], fill=(20, 20, 20), width=int(1.2 * u))
    elif acc == "hat":
        d.rectangle([14 * u, top - 1 * u, 50 * u, top + 3 * u], fill=(60, 40, 90))
        d.rectangle([21 * u, top - 11 * u, 43 * u, top], fill=(60, 40, 90))
    elif acc == "earrings":
        for x in (head[0], head[2]):
            d.ellipse([x - 2 * u, 32 * u, x + 2 * u, 36 * u], fill=(250, 200, 0))
    elif acc == "headband":
        d.rectangle([head[0], top + 5 * u, head[2], top + 8 * u], fill=(230, 30, 120))
    elif acc == "eyepatch":
        d.ellipse([34 * u, 24 * u, 42 * u, 32 * u], fill=(15, 15, 15))
        d.line([head[0], 22 * u, head[2], 30 * u], fill=(15, 15, 15), width=int(u))

    img = img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
    return _vary(img, variant, rng, _c(face["background"]))


def _vary(
    img: Image.Image, variant: int, rng: random.Random, fill: tuple[int, int, int]
) -> Image.Image:
    """Pose, scale, lighting and noise variation for renderings other than the canonical one."""
    if variant == 0:
        return img
    angle = rng.uniform(-12, 12)
    scale = rng.uniform(0.85, 1.1)
    dx, dy = rng.randint(-5, 5), rng.randint(-4, 4)
    size = IMAGE_SIZE
    scaled = img.resize((round(size * scale), round(size * scale)), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (size, size), fill)
    canvas.paste(scaled, ((size - scaled.width) // 2 + dx, (size - scaled.height) // 2 + dy))
    canvas = canvas.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=fill)
    canvas = ImageEnhance.Brightness(canvas).enhance(rng.uniform(0.85, 1.15))
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, 6, (size, size, 3))
    arr = np.clip(np.asarray(canvas, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


# Scene styles of events: sky colour, ground colour, a prop shape and its colour.
_SKIES = ((25, 25, 70), (150, 200, 240), (250, 200, 150), (200, 200, 210), (120, 90, 160))
_GROUNDS = ((60, 140, 60), (210, 190, 140), (240, 240, 250), (110, 110, 120), (60, 90, 170))
_PROPS = ("circle", "triangle", "square", "star", "diamond", "cross")


def event_style(index: int) -> dict[str, object]:
    """A distinct look for event number ``index`` (sky, ground, prop shape and colour)."""
    colours = list(COLOURS)
    return {
        "sky": _SKIES[index % len(_SKIES)],
        "ground": _GROUNDS[(index // len(_SKIES)) % len(_GROUNDS)],
        "prop": _PROPS[index % len(_PROPS)],
        "prop_colour": colours[(index * 3) % len(colours)],
    }


def draw_scene(style: dict[str, object], portrait: Image.Image, rng: random.Random) -> Image.Image:
    """A person (their portrait, large and centred) at an event (sky, ground and props)."""
    s = IMAGE_SIZE * _SS
    img = Image.new("RGB", (s, s), style["sky"])  # type: ignore[arg-type]
    d = ImageDraw.Draw(img)
    horizon = rng.randint(int(0.55 * s), int(0.7 * s))
    d.rectangle([0, horizon, s, s], fill=style["ground"])  # type: ignore[arg-type]
    colour = COLOURS[str(style["prop_colour"])]
    for _ in range(rng.randint(3, 5)):
        x = rng.choice((rng.uniform(0.02, 0.2), rng.uniform(0.8, 0.98))) * s
        y = rng.uniform(0.08, 0.9) * s
        draw_shape(d, str(style["prop"]), colour, x, y, rng.uniform(0.06, 0.1) * s)
    img = img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
    side = int(IMAGE_SIZE * 0.56)
    person = portrait.resize((side, side), Image.Resampling.LANCZOS)
    img.paste(person, ((IMAGE_SIZE - side) // 2 + rng.randint(-3, 3), IMAGE_SIZE - side - 2))
    return img


def draw_shape(
    d: ImageDraw.ImageDraw, shape: str, colour: tuple[int, int, int], x: float, y: float, r: float
) -> None:
    """Draw ``shape`` centred at (x, y) with radius ``r``."""
    if shape == "circle":
        d.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    elif shape == "square":
        d.rectangle([x - r, y - r, x + r, y + r], fill=colour)
    elif shape == "triangle":
        d.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=colour)
    elif shape == "diamond":
        d.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=colour)
    elif shape == "cross":
        w = r / 3
        d.rectangle([x - w, y - r, x + w, y + r], fill=colour)
        d.rectangle([x - r, y - w, x + r, y + w], fill=colour)
    elif shape == "star":
        import math

        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else r * 0.45
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((x + rad * math.cos(a), y + rad * math.sin(a)))
        d.polygon(pts, fill=colour)
    else:  # pragma: no cover - the vocabularies only name the shapes above
        raise ValueError(f"unknown shape {shape!r}")


def draw_shapes(
    objects: list[tuple[str, str, float, float, float]], background: tuple[int, int, int]
) -> Image.Image:
    """A skills picture: ``objects`` are (shape, colour, x, y, radius) in 0..1 units."""
    s = IMAGE_SIZE * _SS
    img = Image.new("RGB", (s, s), background)
    d = ImageDraw.Draw(img)
    for shape, colour, x, y, r in objects:
        draw_shape(d, shape, COLOURS[colour], x * s, y * s, r * s)
    return img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
