"""Procedural person crops for the SyntheticPerson dataset, drawn with vectorised numpy masks.

An :class:`Identity` fixes body shape, skin and hair, clothing colours from a small shared palette, clothing
patterns, and carried objects; a :class:`Camera` fixes background, lighting, blur, viewpoint preference and
occlusion rate. :func:`render_person` draws one crop of an identity in a camera with per-image jitter
(viewpoint, scale, shift, pose, colour noise). Identity lives in combinations of parts, so two identities
often share a top colour and colour histograms alone do not separate them.
"""
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageFilter

# Shared, deliberately small palettes (RGB in [0, 1]).
CLOTH_PALETTE = np.array(
    [
        [0.08, 0.08, 0.10], [0.92, 0.92, 0.90], [0.75, 0.12, 0.12], [0.12, 0.22, 0.60],
        [0.15, 0.45, 0.20], [0.85, 0.75, 0.20], [0.50, 0.50, 0.52], [0.45, 0.28, 0.15],
    ],
    dtype=np.float32,
)
SKIN_PALETTE = np.array([[0.96, 0.80, 0.69], [0.85, 0.64, 0.50], [0.62, 0.43, 0.30], [0.40, 0.27, 0.18]], np.float32)
HAIR_PALETTE = np.array([[0.05, 0.04, 0.03], [0.35, 0.22, 0.10], [0.75, 0.60, 0.35], [0.55, 0.55, 0.55]], np.float32)

FRONT, BACK, SIDE = 0, 1, 2
PLAIN, H_STRIPES, V_STRIPES, CHECKS = 0, 1, 2, 3
TROUSERS, SHORTS, SKIRT = 0, 1, 2
NO_BAG, BACKPACK, SHOULDER_BAG = 0, 1, 2


@dataclass
class Identity:
    """Appearance attributes of one person (colours are RGB triples in [0, 1])."""

    skin: np.ndarray
    hair: np.ndarray
    long_hair: bool
    top: np.ndarray
    top_pattern: int
    top_second: np.ndarray
    long_sleeves: bool
    bottom: np.ndarray
    bottom_type: int
    shoes: np.ndarray
    bag: int
    bag_colour: np.ndarray
    hat: bool
    hat_colour: np.ndarray
    build: float
    height: float

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Identity":
        def cloth() -> np.ndarray:
            return CLOTH_PALETTE[rng.integers(len(CLOTH_PALETTE))]

        top = rng.integers(len(CLOTH_PALETTE))
        second = (top + 1 + rng.integers(len(CLOTH_PALETTE) - 1)) % len(CLOTH_PALETTE)
        return cls(
            skin=SKIN_PALETTE[rng.integers(len(SKIN_PALETTE))],
            hair=HAIR_PALETTE[rng.integers(len(HAIR_PALETTE))],
            long_hair=bool(rng.random() < 0.35),
            top=CLOTH_PALETTE[top],
            top_pattern=int(rng.choice(4, p=[0.4, 0.25, 0.15, 0.2])),
            top_second=CLOTH_PALETTE[second],
            long_sleeves=bool(rng.random() < 0.5),
            bottom=cloth(),
            bottom_type=int(rng.choice(3, p=[0.6, 0.25, 0.15])),
            shoes=cloth(),
            bag=int(rng.choice(3, p=[0.4, 0.3, 0.3])),
            bag_colour=cloth(),
            hat=bool(rng.random() < 0.2),
            hat_colour=cloth(),
            build=float(rng.uniform(0.85, 1.2)),
            height=float(rng.uniform(0.92, 1.04)),
        )


# Attributes in which the members of a look-alike family may differ from the family's common appearance.
_SMALL_DIFFERENCES = ("shoes", "bag", "hat", "hair", "long_sleeves", "top_pattern", "bottom_type", "long_hair")


def look_alike(base: Identity, rng: np.random.Generator, num_changes: int = 2) -> Identity:
    """A member of ``base``'s look-alike family: ``base`` with ``num_changes`` small attributes redrawn.

    Families of near-identical people are what makes the dataset hard: telling them apart needs details
    (shoes, a bag, sleeves) that viewpoint, occlusion and blur often hide.
    """
    other = Identity.sample(rng)
    changes = {}
    for name in rng.choice(_SMALL_DIFFERENCES, size=num_changes, replace=False):
        if name == "bag":
            changes.update(bag=other.bag, bag_colour=other.bag_colour)
        elif name == "hat":
            changes.update(hat=not base.hat, hat_colour=other.hat_colour)
        elif name == "hair":
            changes.update(hair=other.hair)
        elif name == "long_sleeves":
            changes.update(long_sleeves=not base.long_sleeves)
        elif name == "long_hair":
            changes.update(long_hair=not base.long_hair)
        else:
            changes[name] = getattr(other, name)
    changes["build"] = float(np.clip(base.build + rng.normal(0, 0.03), 0.85, 1.2))
    return replace(base, **changes)


@dataclass
class Camera:
    """Nuisances of one camera: background, lighting, blur, viewpoint preference, occlusion rate."""

    bg_top: np.ndarray
    bg_bottom: np.ndarray
    floor: np.ndarray
    bg_stripe_period: float
    gain: np.ndarray
    brightness: float
    blur: float
    view_probs: np.ndarray
    occlusion_prob: float
    scale: float

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Camera":
        return cls(
            bg_top=_muted(rng, 0.3, 0.8),
            bg_bottom=_muted(rng, 0.3, 0.8),
            floor=_muted(rng, 0.2, 0.6),
            bg_stripe_period=float(rng.uniform(0.05, 0.3)),
            gain=rng.uniform(0.95, 1.05, 3).astype(np.float32),
            brightness=float(rng.uniform(0.9, 1.1)),
            blur=float(rng.uniform(0.0, 1.0)),
            view_probs=rng.dirichlet([2.0, 2.0, 2.0]),
            occlusion_prob=float(rng.uniform(0.05, 0.35)),
            scale=float(rng.uniform(0.85, 1.0)),
        )


def _muted(rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    # Mostly grey scenery: strongly coloured backgrounds would dominate colour statistics over the person.
    grey = rng.uniform(lo, hi)
    return (0.7 * grey + 0.3 * rng.uniform(lo, hi, 3)).astype(np.float32)


def _rect(x, y, x0, x1, y0, y1):
    return (x >= x0) & (x < x1) & (y >= y0) & (y < y1)


def _pattern_mask(x, y, pattern: int, period: float) -> np.ndarray:
    hs = np.floor(y / period) % 2 == 1
    vs = np.floor(x / period) % 2 == 1
    return {PLAIN: np.zeros_like(hs), H_STRIPES: hs, V_STRIPES: vs, CHECKS: hs ^ vs}[pattern]


def _background(cam: Camera, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    v = (np.arange(h, dtype=np.float32) + 0.5)[:, None, None] / h
    u = (np.arange(w, dtype=np.float32) + 0.5)[None, :, None] / w
    # A fifth of the scene is the camera's, the rest changes per image (people walk past different places).
    own_top, own_bottom = _muted(rng, 0.35, 0.75), _muted(rng, 0.35, 0.75)
    img = (0.2 * cam.bg_top + 0.8 * own_top) * (1 - v) + (0.2 * cam.bg_bottom + 0.8 * own_bottom) * v
    phase = rng.uniform(0, 1)
    period = cam.bg_stripe_period * rng.uniform(0.5, 2.0)
    img = img * (0.9 + 0.1 * np.sign(np.sin(2 * np.pi * (u / period + phase))))
    floor_start = rng.uniform(0.82, 0.9)
    img = np.where(v > floor_start, 0.3 * cam.floor + 0.7 * _muted(rng, 0.2, 0.6), img)
    return np.broadcast_to(img, (h, w, 3)).copy()


def render_person(person: Identity, cam: Camera, h: int, w: int, rng: np.random.Generator) -> Image.Image:
    """Draw one ``h`` x ``w`` RGB crop of ``person`` seen by ``cam``; per-image jitter comes from ``rng``."""
    img = _background(cam, h, w, rng)
    view = int(rng.choice(3, p=cam.view_probs))
    scale = cam.scale * person.height * rng.uniform(0.92, 1.06)
    cx, cy = rng.uniform(-0.05, 0.05), rng.uniform(-0.03, 0.03)
    # Body coordinates in units of the crop height, origin at the body centre; x spans about +-0.25.
    y = ((np.arange(h, dtype=np.float32) + 0.5)[:, None] / h - 0.5 - cy) / scale
    x = ((np.arange(w, dtype=np.float32) + 0.5)[None, :] / w - 0.5 - cx) * (w / h) / scale * 0.75
    x, y = np.broadcast_to(x, (h, w)), np.broadcast_to(y, (h, w))
    facing = rng.choice([-1.0, 1.0])
    jitter = lambda c: np.clip(c + rng.normal(0, 0.03, 3), 0, 1)  # noqa: E731
    top, second, bottom = jitter(person.top), jitter(person.top_second), jitter(person.bottom)

    half = 0.085 * person.build * (0.6 if view == SIDE else 1.0)
    torso_top, waist, knee, ankle = -0.31, 0.02, 0.22, 0.40
    stride = rng.uniform(0.0, 0.05) if view == SIDE else 0.0

    def paint(mask, colour):
        img[mask] = colour

    # Backpack behind the body (visible beside the torso in side view).
    if person.bag == BACKPACK and view == SIDE:
        bx0 = -half - 0.07 if facing > 0 else half
        paint(_rect(x, y, bx0, bx0 + 0.07, torso_top + 0.03, waist - 0.05), person.bag_colour)
    # Legs.
    leg_w = 0.04 * person.build
    for sign in (-1, 1):
        lx = sign * (0.035 * person.build if view != SIDE else stride)
        leg = _rect(x, y, lx - leg_w, lx + leg_w, waist, ankle)
        covered = y < (ankle if person.bottom_type == TROUSERS else knee)
        paint(leg & covered, bottom)
        paint(leg & ~covered, person.skin)
        paint(_rect(x, y, lx - leg_w - (0.01 if view != SIDE else 0.0), lx + leg_w + 0.02 * (view == SIDE) * facing,
                    ankle, ankle + 0.035), person.shoes)
    if person.bottom_type == SKIRT:
        flare = (y - waist) / (knee - waist) * 0.05
        paint((np.abs(x) < half + flare) & (y >= waist) & (y < knee), bottom)
    # Torso with its pattern.
    torso = (np.abs(x) < half) & (y >= torso_top) & (y < waist + 0.02)
    paint(torso, top)
    paint(torso & _pattern_mask(x, y, person.top_pattern, 0.035), second)
    # Arms (one in side view), sleeves long or short.
    arm_xs = [facing * 0.01] if view == SIDE else [-half - 0.025, half + 0.025]
    swing = rng.uniform(-0.02, 0.02)
    for ax in arm_xs:
        arm = _rect(x, y, ax - 0.022 + swing, ax + 0.022 + swing, torso_top + 0.02, waist + 0.04)
        sleeve = y < (waist + 0.02 if person.long_sleeves else torso_top + 0.12)
        paint(arm & sleeve, top)
        paint(arm & ~sleeve, person.skin)
    # Head, face and hair.
    hy, r = torso_top - 0.07, 0.065
    head = (x / 0.8) ** 2 + (y - hy) ** 2 < r**2
    paint(_rect(x, y, -0.02, 0.02, hy, torso_top + 0.01), person.skin)
    if view == FRONT:
        face = head
    elif view == SIDE:
        face = head & (x * facing > -0.01) & (y > hy - 0.03)
    else:
        face = np.zeros_like(head)
    paint(head, person.hair)
    paint(face & (y > hy - 0.035), person.skin)
    if person.long_hair:
        hair_len = torso_top + (0.1 if view == BACK else 0.05)
        paint((np.abs(x) < r * 0.9) & (y > hy) & (y < hair_len) & ~(face & (y > hy - 0.035)), person.hair)
    if person.hat:
        paint(head & (y < hy - 0.02), person.hat_colour)
        paint(_rect(x, y, -r, r + 0.03 * (view != BACK), hy - 0.03, hy - 0.015), person.hat_colour)
    # Carried objects in front of the body.
    if person.bag == BACKPACK and view == BACK:
        paint(_rect(x, y, -half * 0.75, half * 0.75, torso_top + 0.03, waist - 0.04), person.bag_colour)
    elif person.bag == BACKPACK and view == FRONT:
        for sx in (-half * 0.55, half * 0.55):
            paint(_rect(x, y, sx - 0.012, sx + 0.012, torso_top, torso_top + 0.2), person.bag_colour)
    elif person.bag == SHOULDER_BAG:
        side = -1.0 if view == BACK else 1.0
        bx = side * (half + 0.03) if view != SIDE else facing * 0.03
        paint(_rect(x, y, bx - 0.04, bx + 0.04, waist - 0.06, waist + 0.06), person.bag_colour)
        strap = np.abs((x - bx * 0.3) + side * (y - (torso_top + waist) / 2) * 0.5) < 0.01
        paint(strap & torso, person.bag_colour)
    # Occluder (a pole or another object) from the camera.
    if rng.random() < cam.occlusion_prob:
        ox0 = rng.uniform(0, w * 0.7)
        oy0 = rng.uniform(h * 0.3, h * 0.8)
        img[int(oy0):, int(ox0):int(ox0 + rng.uniform(0.15, 0.5) * w)] = rng.uniform(0.1, 0.9, 3)
    # Lighting, sensor noise, blur.
    img = img * cam.gain * cam.brightness * rng.uniform(0.9, 1.1) + rng.normal(0, 0.02, img.shape)
    out = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    radius = cam.blur * rng.uniform(0.6, 1.4) * h / 128
    return out.filter(ImageFilter.GaussianBlur(radius)) if radius > 0.2 else out
