"""Masklets drawn for people to look at rather than read: each object tinted in its own colour, with
its outline and its id, as an overlay mp4 and a contact sheet (a grid of evenly spaced frames).

The drawing works on plain arrays (frames and per-object boolean masks), so that training can draw
its predictions the same way; `render_video` feeds it a stored video's masklets and frames.
"""

from __future__ import annotations

import math
import os
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from sam2 import rle
from sam2.frames import open_frames

from .masklet_store import MaskletStore

# Saturated colours that stay apart from each other; object id i is drawn in PALETTE[i % 12].
PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (0, 128, 128), (170, 110, 40), (128, 0, 0))
OUTPUTS = {"overlay": ".mp4", "sheet": ".png"}
SHEET_GAP = 2  # pixels between contact-sheet tiles
DEFAULT_FPS = Fraction(24)  # for frame folders, which carry no rate


def object_colour(obj_id: int) -> tuple[int, int, int]:
    return PALETTE[obj_id % len(PALETTE)]


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _inside_point(mask: np.ndarray) -> tuple[float, float]:
    """The mask pixel nearest to its centroid (the centroid of a ring or a C lies outside it)."""
    ys, xs = np.nonzero(mask)
    nearest = np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2)
    return float(xs[nearest]), float(ys[nearest])


def draw_masks(frame: np.ndarray, masks: Mapping[int, np.ndarray], alpha: float = 0.5) -> np.ndarray:
    """frame: H x W x 3 uint8; masks: obj_id -> H x W bool. Returns a new H x W x 3 uint8 where each
    object is blended with its colour (weight `alpha`), outlined in its full colour and labelled
    with its id; pixels outside every mask keep their value."""
    height, width = frame.shape[:2]
    out = frame.astype(np.float32)
    thickness = max(1, round(min(height, width) / 200))
    labels = []
    for obj_id, mask in sorted(masks.items()):
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (height, width):
            raise ValueError(f"object {obj_id}: mask shape {mask.shape} is not the frame size {height}x{width}")
        # work inside the object's box (grown by the outline width): a 1080p frame is 2 M pixels
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            continue
        ys = slice(max(0, rows[0] - thickness), min(height, rows[-1] + 1 + thickness))
        xs = slice(max(0, cols[0] - thickness), min(width, cols[-1] + 1 + thickness))
        inside, region = mask[ys, xs], out[ys, xs]
        colour = np.array(object_colour(obj_id), np.float32)
        region[inside] = (1 - alpha) * region[inside] + alpha * colour
        # border_value=1: a mask cut by the frame edge gets no outline along the edge
        region[inside & ~ndimage.binary_erosion(inside, iterations=thickness, border_value=1)] = colour
        x, y = _inside_point(inside)
        labels.append((obj_id, (x + xs.start, y + ys.start)))
    image = Image.fromarray(np.round(out).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    font = _font(max(10, height // 24))
    for obj_id, xy in labels:
        draw.text(xy, str(obj_id), fill="white", font=font, anchor="mm", stroke_width=1, stroke_fill="black")
    return np.array(image)


def sheet_indices(num_frames: int, count: int) -> list[int]:
    """`count` evenly spaced frame indices from the first to the last frame (all of a shorter video)."""
    return sorted({round(i) for i in np.linspace(0, num_frames - 1, min(count, num_frames))})


def contact_sheet(tiles: Sequence[np.ndarray], captions: Sequence[str], columns: int = 4,
                  tile_width: int = 320) -> Image.Image:
    """Frames (each H x W x 3 uint8, one size) in a grid of `columns`, each scaled to `tile_width`
    pixels wide (never enlarged) with its caption in the top-left corner."""
    height, width = tiles[0].shape[:2]
    tile_w = min(tile_width, width)
    tile_h = max(1, round(height * tile_w / width))
    columns = min(columns, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (columns * tile_w + (columns - 1) * SHEET_GAP, rows * tile_h + (rows - 1) * SHEET_GAP))
    font = _font(max(10, tile_h // 12))
    for i, (tile, caption) in enumerate(zip(tiles, captions, strict=True)):
        image = Image.fromarray(tile)
        if image.size != (tile_w, tile_h):
            image = image.resize((tile_w, tile_h), Image.Resampling.BILINEAR)
        ImageDraw.Draw(image).text((3, 2), caption, fill="white", font=font, stroke_width=1, stroke_fill="black")
        sheet.paste(image, ((i % columns) * (tile_w + SHEET_GAP), (i // columns) * (tile_h + SHEET_GAP)))
    return sheet


def overlay_sheet(frames: np.ndarray, masks: Mapping[int, np.ndarray], count: int = 12, columns: int = 4,
                  tile_width: int = 320, alpha: float = 0.5) -> Image.Image:
    """A contact sheet of arrays: frames T x H x W x 3 uint8, masks obj_id -> T x H x W bool (e.g. a
    model's predictions); `count` evenly spaced frames, each captioned with its index."""
    picks = sheet_indices(len(frames), count)
    tiles = [draw_masks(frames[t], {obj_id: m[t] for obj_id, m in masks.items()}, alpha) for t in picks]
    return contact_sheet(tiles, [f"frame {t}" for t in picks], columns, tile_width)


# ------------------------------------------------------------------------------------ stored videos
@dataclass(frozen=True)
class RenderOptions:
    """What to draw for each labelled video: `outputs` holds "overlay" (an mp4 of every frame) and/or
    "sheet" (a PNG grid of `sheet_frames` evenly spaced frames); a comma-separated string is accepted."""

    outputs: tuple[str, ...] = ()
    alpha: float = 0.5
    sheet_frames: int = 12
    sheet_columns: int = 4
    tile_width: int = 320

    def __post_init__(self) -> None:
        outputs = self.outputs.split(",") if isinstance(self.outputs, str) else self.outputs or ()
        outputs = tuple(dict.fromkeys(o.strip() for o in outputs if o.strip()))
        unknown = [o for o in outputs if o not in OUTPUTS]
        if unknown:
            raise ValueError(f"unknown render outputs {unknown}; choose from {', '.join(OUTPUTS)}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha}")
        if min(self.sheet_frames, self.sheet_columns, self.tile_width) < 1:
            raise ValueError("sheet_frames, sheet_columns and tile_width must be at least 1")
        object.__setattr__(self, "outputs", outputs)


def render_paths(store: MaskletStore, video_id: str) -> dict[str, Path]:
    """Where each output of a video goes: <store>/renders/<video_id>.mp4 and .png."""
    stem = store.path(video_id).stem  # the id, made safe as a file name
    return {output: store.root / "renders" / f"{stem}{suffix}" for output, suffix in OUTPUTS.items()}


def outdated_outputs(store: MaskletStore, video_id: str, options: RenderOptions) -> tuple[str, ...]:
    """The requested outputs of a stored video that are missing or older than its masklets."""
    labelled = store.path(video_id).stat().st_mtime_ns
    paths = render_paths(store, video_id)
    return tuple(o for o in options.outputs if not paths[o].is_file() or paths[o].stat().st_mtime_ns < labelled)


def discard_partial_renders(store: MaskletStore) -> int:
    """Remove temporary files of renders that died; call when no render is running."""
    stale = list((store.root / "renders").glob("*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def render_video(store: MaskletStore, video_id: str, uri: str, options: RenderOptions) -> list[Path]:
    """Draw a stored video's masklets over its frames into the requested outputs. Each is written to
    a temporary file and renamed, so a crash leaves no partial render. Frames are decoded one at a
    time; masks are decoded per frame from the stored RLE."""
    rows_by_frame = defaultdict(list)
    for row in store.rows(video_id):
        rows_by_frame[row.frame_idx].append(row)
    frames = open_frames(uri, name=f"{video_id} ({uri})")
    sizes = {(r.height, r.width) for rows in rows_by_frame.values() for r in rows}
    if sizes - {(frames.height, frames.width)}:
        raise ValueError(f"video {video_id!r}: masklets of size {sorted(sizes)} do not fit the "
                         f"{frames.height}x{frames.width} frames of {uri}")

    def drawn(idx: int, frame: np.ndarray) -> np.ndarray:
        masks = {r.obj_id: rle.decode(r.rle, r.height, r.width) for r in rows_by_frame.get(idx, ())}
        return draw_masks(frame, masks, options.alpha)

    paths = render_paths(store, video_id)
    paths["overlay"].parent.mkdir(exist_ok=True)
    picks = sheet_indices(frames.num_frames, options.sheet_frames) if "sheet" in options.outputs else []
    tiles: dict[int, np.ndarray] = {}
    written = []
    if "overlay" in options.outputs:
        with _Mp4Writer(paths["overlay"], _frame_rate(uri)) as mp4:
            for idx, frame in frames.iter_frames():
                image = drawn(idx, frame)
                mp4.write(image)
                if idx in picks:
                    tiles[idx] = image
        written.append(paths["overlay"])
    if picks:
        for idx in picks:
            if idx not in tiles:
                tiles[idx] = drawn(idx, frames.frame(idx))
        sheet = contact_sheet([tiles[i] for i in picks], [f"frame {i}" for i in picks], options.sheet_columns,
                              options.tile_width)
        tmp = _temporary(paths["sheet"])
        sheet.save(tmp, format="PNG")
        os.replace(tmp, paths["sheet"])
        written.append(paths["sheet"])
    return written


def _temporary(final: Path) -> Path:
    return final.with_name(f"{final.name}.{uuid.uuid4().hex}.tmp")


def _frame_rate(uri: str) -> Fraction:
    """The source video's frame rate, so the overlay plays at its speed."""
    if not Path(uri).is_file():
        return DEFAULT_FPS
    with av.open(uri) as container:
        rate = container.streams.video[0].average_rate
    return Fraction(rate) if rate else DEFAULT_FPS


class _Mp4Writer:
    """H.264 frames written one at a time to a temporary file, renamed on a clean exit. yuv420p (what
    players expect) needs even sizes: an odd last row or column is dropped."""

    def __init__(self, final: Path, fps: Fraction) -> None:
        self.final, self.tmp, self.fps = final, _temporary(final), fps
        self._container = self._stream = None

    def __enter__(self) -> _Mp4Writer:
        self._container = av.open(str(self.tmp), "w", format="mp4")
        return self

    def write(self, frame: np.ndarray) -> None:
        height, width = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
        if self._stream is None:
            self._stream = self._container.add_stream("libx264", rate=self.fps)
            self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "yuv420p"
        image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:height, :width]), format="rgb24")
        self._container.mux(self._stream.encode(image))

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and self._stream is not None:
                self._container.mux(self._stream.encode())
        finally:
            self._container.close()
        if exc_type is None:
            os.replace(self.tmp, self.final)
        else:
            self.tmp.unlink(missing_ok=True)
