"""Synthetic videos with exact ground truth, deterministic by seed.

A clip is a textured, cluttered background with 1-5 annotated objects of varied shape, colour and
texture that move, rotate, scale and deform; they occlude one another, pass behind foreground
occluders, may leave the frame and come back, may walk in after the start or walk out for good
before the end, and may share the scene with unannotated look-alikes (distractors). Every object's
visible mask is known exactly on every frame, so the generator feeds training, J&F evaluation,
tests and demos alike.

Nothing is trained on `HELD_OUT_SEEDS` (`held_out_clips`): benchmarks evaluate there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

SHAPES = ("ellipse", "rectangle", "polygon", "blob", "ring")
TEXTURES = ("solid", "stripes", "checker", "noise", "gradient")

# Clip seeds that no shipped training recipe draws (configs/training/*.yaml: the video stage's clips
# use seeds below 110,000, the image stages' above 124,000,000; tests/test_synthetic.py checks it),
# so the bundled model has never seen these clips. The samples (`sam2-ray samples`) start at 20,000,000.
HELD_OUT_SEEDS = range(10_000_000, 20_000_000)
# Fourth word of the seed of the late-entry / early-exit draws: [seed, attempt, 0, _TIMING_STREAM] is
# never a frame's noise seed [seed, attempt, t], so those draws leave every other draw as it was.
_TIMING_STREAM = 0x656E7472


@dataclass(frozen=True)
class ClipSpec:
    """Knobs of the generator; a seed picks everything else."""

    num_frames: int = 24
    height: int = 192
    width: int = 256
    min_objects: int = 1
    max_objects: int = 5
    p_exit: float = 0.3  # an object's path leaves the frame and comes back
    p_occluder: float = 0.4  # a foreground bar sweeps across the scene
    p_distractor: float = 0.35  # unannotated look-alikes of an object
    clutter: int = 6  # static shapes painted into the background
    p_late_entry: float = 0.0  # an object is off screen on frame 0 and walks in from the nearest edge later
    p_early_exit: float = 0.0  # an object walks out through the nearest edge for good before the end


@dataclass
class Clip:
    frames: np.ndarray  # T x H x W x 3 uint8
    masks: np.ndarray  # T x N x H x W bool, visible part of each annotated object
    obj_ids: list[int]
    # difficulty: occlusion, exit_reentry, late_entry, early_exit, distractors, num_objects
    tags: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.frames)


@dataclass
class _Thing:
    """Something drawn: an annotated object, a distractor or an occluder."""

    shape: str
    params: np.ndarray  # shape parameters (harmonics, polygon radii, aspect)
    colour: np.ndarray  # 3 floats
    colour2: np.ndarray
    texture: str
    texture_freq: float
    size: float  # pixels, the radius at scale 1
    path: callable  # t -> (x, y, angle, scale, deform phase)


def _noise_field(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth value noise in [0, 1]: a coarse random grid upsampled bilinearly."""
    grid = rng.random((cells + 1, cells + 1))
    ys, xs = np.linspace(0, cells, h), np.linspace(0, cells, w)
    y0, x0 = np.minimum(ys.astype(int), cells - 1), np.minimum(xs.astype(int), cells - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a, b = grid[y0][:, x0], grid[y0][:, x0 + 1]
    c, d = grid[y0 + 1][:, x0], grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = rng.uniform(40, 215, 3)
    tint = rng.uniform(-60, 60, 3)
    img = base + tint * _noise_field(rng, h, w, int(rng.integers(2, 6)))[..., None]
    img += rng.uniform(10, 35) * (_noise_field(rng, h, w, int(rng.integers(12, 30)))[..., None] - 0.5)
    if rng.random() < 0.5:  # floor-like stripes or tiles
        yy, xx = np.mgrid[0:h, 0:w]
        period = rng.uniform(8, 40)
        angle = rng.uniform(0, np.pi)
        wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) / period * 2 * np.pi)
        img += rng.uniform(6, 20) * wave[..., None]
    return img


def _texture(thing: _Thing, u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour of the thing at object-local coordinates (u, v in units of its size): N x 3."""
    f = thing.texture_freq
    if thing.texture == "solid":
        mix = np.zeros_like(u)
    elif thing.texture == "stripes":
        mix = (np.sin(u * f * np.pi) > 0).astype(float)
    elif thing.texture == "checker":
        mix = ((np.floor(u * f) + np.floor(v * f)) % 2).astype(float)
    elif thing.texture == "noise":
        mix = rng.random(u.shape) * 0.6
    else:  # gradient
        mix = np.clip((u + 1) / 2, 0, 1)
    return thing.colour * (1 - mix[:, None]) + thing.colour2 * mix[:, None]


def _inside(thing: _Thing, u: np.ndarray, v: np.ndarray, phase: float) -> np.ndarray:
    """Membership of object-local points; the contour of blobs and polygons breathes with `phase`."""
    p = thing.params
    if thing.shape == "ellipse":
        return u**2 + (v / p[0]) ** 2 <= 1
    if thing.shape == "rectangle":
        return (np.abs(u) <= 1) & (np.abs(v) <= p[0])
    if thing.shape == "ring":
        r2 = u**2 + (v / p[0]) ** 2
        return (r2 <= 1) & (r2 >= p[1] ** 2)
    angle = np.arctan2(v, u)
    radius = np.hypot(u, v)
    if thing.shape == "polygon":  # star-ish: radii at k vertices, interpolated linearly in angle
        k = len(p)
        pos = (angle + np.pi) / (2 * np.pi) * k
        i = np.floor(pos).astype(int) % k
        frac = pos - np.floor(pos)
        return radius <= p[i] * (1 - frac) + p[(i + 1) % k] * frac
    # blob: radius modulated by a few harmonics whose phases drift over time
    r = np.ones_like(angle)
    for n, (amp, ph) in enumerate(p.reshape(-1, 2), start=2):
        r += amp * np.sin(n * angle + ph + phase * (n - 1))
    return radius <= r


def _make_thing(rng: np.random.Generator, h: int, w: int, num_frames: int, exits: bool,
                look_like: _Thing | None = None) -> _Thing:
    side = min(h, w)
    if look_like is None:
        shape = SHAPES[rng.integers(len(SHAPES))]
        if shape == "polygon":
            params = rng.uniform(0.55, 1.0, int(rng.integers(3, 8)))
        elif shape == "blob":
            params = np.stack([rng.uniform(0.05, 0.2, 3), rng.uniform(0, 2 * np.pi, 3)], axis=1).ravel()
        elif shape == "ring":
            params = np.array([rng.uniform(0.6, 1.0), rng.uniform(0.35, 0.6)])
        else:
            params = np.array([rng.uniform(0.45, 1.0)])
        colour = rng.uniform(0, 255, 3)
        colour2 = np.clip(colour + rng.uniform(-120, 120, 3), 0, 255)
        texture, freq = TEXTURES[rng.integers(len(TEXTURES))], rng.uniform(1.5, 4)
        size = rng.uniform(0.08, 0.2) * side
    else:  # a distractor: same look, a slightly different colour and size
        shape, params, texture, freq = look_like.shape, look_like.params, look_like.texture, look_like.texture_freq
        colour = np.clip(look_like.colour + rng.uniform(-25, 25, 3), 0, 255)
        colour2 = np.clip(look_like.colour2 + rng.uniform(-25, 25, 3), 0, 255)
        size = look_like.size * rng.uniform(0.8, 1.2)
    start = rng.uniform([0.2 * w, 0.2 * h], [0.8 * w, 0.8 * h])
    speed = rng.uniform(0.3, 1.2) * side / 48
    heading = rng.uniform(0, 2 * np.pi)
    velocity = speed * np.array([np.cos(heading), np.sin(heading)])
    wobble, wobble_freq, wobble_phase = rng.uniform(0, 0.08 * side), rng.uniform(0.1, 0.4), rng.uniform(0, 6.3)
    angle0, spin = rng.uniform(0, 2 * np.pi), rng.uniform(-0.08, 0.08)
    scale_amp, scale_freq = rng.uniform(0, 0.25), rng.uniform(0.05, 0.2)
    deform_speed = rng.uniform(0.05, 0.3)
    if exits:  # out through the nearest side and back: a round trip of a few frames outside
        out_at = rng.uniform(0.2, 0.45) * num_frames
        back_at = out_at + rng.uniform(0.15, 0.3) * num_frames
        target = np.array([-size * 1.6 if start[0] < w / 2 else w + size * 1.6, start[1]])
    else:
        out_at = back_at = None

    def path(t: float) -> tuple[float, float, float, float, float]:
        pos = start + velocity * t
        pos = np.array([_bounce(pos[0], w), _bounce(pos[1], h)])
        pos[1] += wobble * np.sin(wobble_freq * t + wobble_phase)
        if out_at is not None:  # blend toward the outside target and back
            k = np.clip(min(t - (out_at - 4), back_at + 4 - t) / 4, 0, 1) if out_at - 4 < t < back_at + 4 else 0.0
            pos = pos * (1 - k) + target * k
        scale = 1 + scale_amp * np.sin(scale_freq * t)
        return pos[0], pos[1], angle0 + spin * t, scale, deform_speed * t

    return _Thing(shape, params, colour, colour2, texture, freq, size, path)


def _bounce(x: float, limit: float) -> float:
    """Reflect a coordinate moving in a straight line off the walls of [0.1, 0.9] x limit."""
    lo, hi = 0.1 * limit, 0.9 * limit
    span = hi - lo
    y = (x - lo) % (2 * span)
    return lo + (y if y <= span else 2 * span - y)


def _draw(thing: _Thing, t: float, h: int, w: int, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray, tuple[slice, slice]] | None:
    """-> (mask of the thing in its box, colours of its pixels, box) or None when off screen."""
    x, y, angle, scale, phase = thing.path(t)
    reach = thing.size * scale * 1.4
    y0, y1 = max(int(y - reach), 0), min(int(y + reach) + 1, h)
    x0, x1 = max(int(x - reach), 0), min(int(x + reach) + 1, w)
    if y0 >= y1 or x0 >= x1:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1]
    dx, dy = (xx + 0.5 - x) / (thing.size * scale), (yy + 0.5 - y) / (thing.size * scale)
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    inside = _inside(thing, u, v, phase)
    if not inside.any():
        return None
    return inside, _texture(thing, u[inside], v[inside], rng), (slice(y0, y1), slice(x0, x1))


def _occluder(rng: np.random.Generator, h: int, w: int, num_frames: int) -> _Thing:
    """A tall or wide bar (pole, fence post) sweeping across the frame in front of everything."""
    colour = rng.uniform(0, 255, 3)
    size = max(h, w) * 0.6
    vertical = rng.random() < 0.5
    span = w if vertical else h
    start, end = rng.uniform(-0.1, 0.3) * span, rng.uniform(0.7, 1.1) * span
    if rng.random() < 0.5:
        start, end = end, start
    thickness = rng.uniform(0.04, 0.1) * min(h, w) / size

    def path(t: float):
        pos = start + (end - start) * t / max(num_frames - 1, 1)
        return (pos, h / 2, 0.0, 1.0, 0.0) if vertical else (w / 2, pos, np.pi / 2, 1.0, 0.0)

    return _Thing("bar", np.array([thickness]), colour, colour, "solid", 1.0, size, path)


def generate_clip(seed: int, spec: ClipSpec = ClipSpec(), frames: Sequence[int] | None = None) -> Clip:
    """One clip; the same seed and spec always give the same pixels and masks. Every object is
    clearly visible on frame 0 (at least half of it and 30 pixels), where prompts go, except those
    that enter late (`spec.p_late_entry`), which are off screen there.

    `frames`: render only these increasing frame indices, e.g. a training clip of 8 frames out of 24
    or the image stage's single frame. Each frame is the same whichever others are rendered (its
    pixel noise has its own seed); the tags describe the frames rendered."""
    times = list(range(spec.num_frames)) if frames is None else [int(t) for t in frames]
    if not times or times != sorted(set(times)) or times[0] < 0 or times[-1] >= spec.num_frames:
        raise ValueError(f"frames must be increasing indices in [0, {spec.num_frames}), not {frames}")
    rng = np.random.default_rng(seed)
    for attempt in range(50):
        scene = _scene(rng, spec, (seed, attempt))
        first = _render(scene, 0, spec)
        visible = first.masks.sum(axis=(1, 2))
        if np.any((visible < np.maximum(0.5 * first.full_area, 30)) & ~scene.late):
            continue
        rendered = [first if t == 0 else _render(scene, t, spec) for t in times]
        return _clip(rendered, scene)
    raise ValueError(f"no clip with every object visible on frame 0 for seed {seed} and {spec}")


def held_out_clips(spec: ClipSpec = ClipSpec(), count: int = 100, start: int = 0) -> Iterator[tuple[int, Clip]]:
    """(seed, clip) for `count` seeds of `HELD_OUT_SEEDS` from its `start`-th: clips the bundled model
    never trained on, the same on every machine."""
    for seed in HELD_OUT_SEEDS[start: start + count]:
        yield seed, generate_clip(seed, spec)


@dataclass
class _Scene:
    """Everything a clip's frames share: the background and what moves over it, back to front."""

    background: np.ndarray  # H x W x 3 float
    layers: list[tuple[str, int, _Thing]]  # (kind, object index or -1, thing)
    num_objects: int
    late: np.ndarray  # N bool, objects off screen on frame 0 (they enter later)
    distractors: bool
    noise_seed: tuple[int, int]  # (clip seed, attempt): with the frame index, seeds a frame's pixel noise


@dataclass
class _Frame:
    image: np.ndarray  # H x W x 3 uint8
    masks: np.ndarray  # N x H x W bool, visible parts
    full_area: np.ndarray  # N, pixels of each object on screen, hidden parts included


def _scene(rng: np.random.Generator, spec: ClipSpec, noise_seed: tuple[int, int]) -> _Scene:
    h, w, n_t = spec.height, spec.width, spec.num_frames
    background = _background(rng, h, w)
    for _ in range(int(rng.integers(0, spec.clutter + 1))):  # static clutter, part of the background
        thing = _make_thing(rng, h, w, n_t, exits=False)
        drawn = _draw(thing, 0.0, h, w, rng)
        if drawn is not None:
            inside, colours, box = drawn
            region = background[box]
            region[inside] = region[inside] * 0.5 + colours * 0.5  # faded, so clutter reads as background
    num_objects = int(rng.integers(spec.min_objects, spec.max_objects + 1))
    objects = [_make_thing(rng, h, w, n_t, exits=rng.random() < spec.p_exit) for _ in range(num_objects)]
    objects, late = _enter_and_leave(objects, spec, np.random.default_rng([*noise_seed, 0, _TIMING_STREAM]))
    distractors = [_make_thing(rng, h, w, n_t, exits=False, look_like=objects[int(rng.integers(num_objects))])
                   for _ in range(int(rng.integers(1, 3)) if rng.random() < spec.p_distractor else 0)]
    occluders = [_occluder(rng, h, w, n_t) for _ in range(1 if rng.random() < spec.p_occluder else 0)]
    # Painter's order: distractors and objects interleaved at random depths, occluders in front.
    layers = [("obj", i, o) for i, o in enumerate(objects)] + [("distractor", -1, d) for d in distractors]
    layers = [layers[i] for i in rng.permutation(len(layers))] + [("occluder", -1, o) for o in occluders]
    return _Scene(background, layers, num_objects, late, bool(distractors), noise_seed)


def _enter_and_leave(objects: list[_Thing], spec: ClipSpec, rng: np.random.Generator
                     ) -> tuple[list[_Thing], np.ndarray]:
    """Objects that walk in after frame 0 or out before the end, drawn from `rng` alone; -> the
    objects and which of them are off screen on frame 0. An entering object is off screen until a few
    frames before its entry frame (drawn in [0.15, 0.45] of the clip), a leaving one from a few frames
    after its exit frame (in [0.6, 0.8]) to the last, so one that does both is on screen for at least
    0.15 of the clip."""
    n_t = spec.num_frames
    late = np.zeros(len(objects), bool)
    out = []
    for i, thing in enumerate(objects):
        enters, leaves = rng.random() < spec.p_late_entry, rng.random() < spec.p_early_exit
        enter_at = max(1.0, rng.uniform(0.15, 0.45) * n_t) if enters else None
        leave_at = rng.uniform(0.6, 0.8) * (n_t - 1) if leaves else None
        if enters or leaves:
            thing = replace(thing, path=_walk(thing, spec, enter_at, leave_at))
        late[i] = enters
        out.append(thing)
    return out, late


def _walk(thing: _Thing, spec: ClipSpec, enter_at: float | None, leave_at: float | None):
    """`thing.path` that comes in from beyond the frame edge nearest to it at `enter_at` (reaching its
    own path then) and goes out beyond the edge nearest to it at `leave_at`, out by the last frame."""
    h, w = spec.height, spec.width
    margin = 2.5 * thing.size  # beyond any shape's reach at any scale (< 2 x size)
    ramp_in = None if enter_at is None else min(4.0, enter_at)  # frame 0 is always outside
    ramp_out = None if leave_at is None else min(4.0, spec.num_frames - 1 - leave_at)

    def outside(t: float) -> np.ndarray:
        x, y = thing.path(t)[:2]
        side = int(np.argmin([x, w - x, y, h - y]))
        return np.array([(-margin, y), (w + margin, y), (x, -margin), (x, h + margin)][side])

    entry_target = None if enter_at is None else outside(enter_at)
    exit_target = None if leave_at is None else outside(leave_at)

    def path(t: float) -> tuple[float, float, float, float, float]:
        x, y, angle, scale, phase = thing.path(t)
        if entry_target is not None and t < enter_at:
            target, k = entry_target, min((enter_at - t) / ramp_in, 1.0)
        elif exit_target is not None and t > leave_at:
            target, k = exit_target, min((t - leave_at) / ramp_out, 1.0)
        else:
            return x, y, angle, scale, phase
        return x + (target[0] - x) * k, y + (target[1] - y) * k, angle, scale, phase

    return path


def _render(scene: _Scene, t: int, spec: ClipSpec) -> _Frame:
    h, w = spec.height, spec.width
    rng = np.random.default_rng([*scene.noise_seed, t])
    img = scene.background.copy()
    masks = np.zeros((scene.num_objects, h, w), bool)
    full_area = np.zeros(scene.num_objects)
    for kind, index, thing in scene.layers:
        drawn = _bar(thing, t, h, w) if kind == "occluder" else _draw(thing, float(t), h, w, rng)
        if drawn is None:
            continue
        inside, colours, box = drawn
        img[box][inside] = colours
        masks[:, box[0], box[1]] &= ~inside  # whatever is drawn on top hides what is below
        if kind == "obj":
            masks[index, box[0], box[1]] |= inside
            full_area[index] = inside.sum()
    img += rng.normal(0, 3, img.shape)  # sensor noise
    return _Frame(np.clip(img, 0, 255).astype(np.uint8), masks, full_area)


def _clip(rendered: list[_Frame], scene: _Scene) -> Clip:
    masks = np.stack([f.masks for f in rendered])
    full_area = np.stack([f.full_area for f in rendered])
    visible = masks.sum(axis=(2, 3))
    on_screen = full_area > 0
    tags = {"occlusion": bool(np.any(on_screen & (visible < 0.5 * full_area))),
            "exit_reentry": any(_reappears(on_screen[:, i]) for i in range(scene.num_objects)),
            # of the frames rendered: off screen on the first and on later / on earlier and off on the last
            "late_entry": bool(np.any(~on_screen[0] & on_screen.any(axis=0))),
            "early_exit": bool(np.any(~on_screen[-1] & on_screen.any(axis=0))),
            "distractors": scene.distractors, "num_objects": scene.num_objects}
    return Clip(np.stack([f.image for f in rendered]), masks, list(range(1, scene.num_objects + 1)), tags)


def _bar(thing: _Thing, t: int, h: int, w: int):
    x, y, angle, _, _ = thing.path(float(t))
    half = thing.params[0] * thing.size
    yy, xx = np.mgrid[0:h, 0:w]
    inside = np.abs(xx + 0.5 - x) <= half if angle == 0.0 else np.abs(yy + 0.5 - y) <= half
    if not inside.any():
        return None
    return inside, np.broadcast_to(thing.colour, (int(inside.sum()), 3)), (slice(0, h), slice(0, w))


def _reappears(present: np.ndarray) -> bool:
    """Visible, then gone for at least one frame, then visible again."""
    idx = np.flatnonzero(present)
    return len(idx) > 0 and bool(np.any(np.diff(idx) > 1))
