"""Label Studio's conventions <-> the runtime's, at this edge only.

Label Studio stores geometry in percent (0-100) of the original image or frame, origin top-left,
video frames 1-based (`time = frame / framerate`), and brush masks as its own RLE (0/255 in
RGBA). Inside the runtime everything is original-frame pixels, frames 0-based, masks H x W bool.
Each conversion here has its inverse next to it, so that tests can round-trip them.
"""

from __future__ import annotations

import math

import numpy as np
from label_studio_sdk.converter.brush import decode_rle, mask2rle

EPS = 1e-6  # percent: Label Studio's float round-off at the image border


class MalformedRegion(ValueError):
    """A region that cannot become a prompt; the message names the region."""


def _where(result: dict) -> str:
    return f"region {result.get('id', '?')!r} ({result.get('type', '?')})"


def _in_range(values: dict, keys: tuple[str, ...], result: dict) -> None:
    for key in keys:
        v = values.get(key)
        if not isinstance(v, int | float) or not math.isfinite(v):
            raise MalformedRegion(f"{_where(result)}: {key} must be a number, got {v!r}")


def region_label(result: dict) -> str | None:
    """The class name a region carries (`rectanglelabels`, `keypointlabels`, `labels`, ...)."""
    value = result.get("value") or {}
    for key in ("rectanglelabels", "keypointlabels", "brushlabels", "labels"):
        if value.get(key):
            return value[key][0]
    return None


def region_score(result: dict) -> float:
    """A region's confidence: its `score` (a model's prediction carries one per region), else 1."""
    score = result.get("score")
    if score is None:
        return 1.0
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise MalformedRegion(f"{_where(result)}: score must be a number, got {score!r}")
    return float(score)


# ------------------------------------------------------------------------------------------- image
def keypoint_to_px(result: dict, width: int, height: int) -> tuple[float, float, int]:
    """A `keypointlabels` result -> (x, y, 1 positive | 0 negative). Negative is the editor's
    Alt-click, serialised as a top-level `is_positive: false`."""
    value = result.get("value") or {}
    _in_range(value, ("x", "y"), result)
    x, y = value["x"], value["y"]
    if not (-EPS <= x <= 100 + EPS and -EPS <= y <= 100 + EPS):
        raise MalformedRegion(f"{_where(result)}: point ({x:g} %, {y:g} %) is outside the image")
    positive = result.get("is_positive", True) is not False
    return min(x, 100) / 100 * width, min(y, 100) / 100 * height, int(positive)


def box_percent_to_px(value: dict, width: int, height: int, result: dict) -> tuple[float, float, float, float]:
    """x/y/width/height percent (top-left corner) -> x0, y0, x1, y1 pixels; outside the frame,
    empty or rotated boxes are malformed (a rotated box is not a SAM prompt)."""
    _in_range(value, ("x", "y", "width", "height"), result)
    if abs(value.get("rotation") or 0) > EPS:
        raise MalformedRegion(f"{_where(result)}: rotated boxes are not supported (rotation {value['rotation']:g})")
    x, y, w, h = value["x"], value["y"], value["width"], value["height"]
    if w <= 0 or h <= 0:
        raise MalformedRegion(f"{_where(result)}: empty box ({w:g} x {h:g} %)")
    if x < -EPS or y < -EPS or x + w > 100 + EPS or y + h > 100 + EPS:
        raise MalformedRegion(f"{_where(result)}: box x={x:g} y={y:g} w={w:g} h={h:g} % is outside the frame")
    x0, y0 = max(x, 0) / 100 * width, max(y, 0) / 100 * height
    return x0, y0, min(x + w, 100) / 100 * width, min(y + h, 100) / 100 * height


def rectangle_to_px(result: dict, width: int, height: int) -> tuple[float, float, float, float]:
    return box_percent_to_px(result.get("value") or {}, width, height, result)


def brush_to_mask(result: dict, width: int | None = None, height: int | None = None) -> np.ndarray:
    """A `brushlabels` result in Label Studio RLE -> H x W bool (its original_width/height, which
    must match the image when given)."""
    value = result.get("value") or {}
    w, h = result.get("original_width"), result.get("original_height")
    if value.get("format") != "rle" or not value.get("rle") or not w or not h:
        raise MalformedRegion(f"{_where(result)}: a brush mask needs value.format 'rle', value.rle and "
                              "original_width/original_height")
    if (width, height) != (None, None) and (w, h) != (width, height):
        raise MalformedRegion(f"{_where(result)}: mask is {w}x{h} but the image is {width}x{height}")
    try:
        pixels = decode_rle(value["rle"])
    except Exception as error:  # the SDK decoder raises whatever the bit stream provokes
        raise MalformedRegion(f"{_where(result)}: brush RLE cannot be decoded ({error})") from None
    if pixels.size != w * h * 4:
        raise MalformedRegion(f"{_where(result)}: brush RLE holds {pixels.size // 4} pixels, not {w}x{h}")
    return pixels.reshape(h, w, 4)[:, :, 3] > 0


def mask_to_brush(mask: np.ndarray, *, from_name: str, to_name: str, label: str | None, region_id: str,
                  score: float | None = None) -> dict:
    """H x W bool -> a `brushlabels` result. Masks are written 0/255: the editor paints alpha."""
    height, width = mask.shape
    value = {"format": "rle", "rle": mask2rle(mask.astype(np.uint8) * 255), "brushlabels": [label] if label else []}
    result = {"id": region_id, "from_name": from_name, "to_name": to_name, "type": "brushlabels",
              "original_width": int(width), "original_height": int(height), "image_rotation": 0, "value": value}
    if score is not None:
        result["score"] = float(score)
    return result


# ------------------------------------------------------------------------------------------- video
def keyframes(result: dict) -> list[dict]:
    """The `sequence` of a `videorectangle` result, checked to be keyframes with integer 1-based
    frames."""
    sequence = (result.get("value") or {}).get("sequence")
    if not isinstance(sequence, list) or not sequence:
        raise MalformedRegion(f"{_where(result)}: a video rectangle needs a non-empty value.sequence")
    for keyframe in sequence:
        frame = keyframe.get("frame") if isinstance(keyframe, dict) else None
        if not isinstance(frame, int) or isinstance(frame, bool) or frame < 1:
            raise MalformedRegion(f"{_where(result)}: keyframe frame must be an integer >= 1 (1-based), got {frame!r}")
    return sequence


def track_to_videorectangle(boxes: list[tuple[float, float, float, float] | None], *, width: int, height: int,
                            fps: float, from_name: str, to_name: str, label: str | None, region_id: str,
                            score: float | None = None) -> dict:
    """Per-frame pixel boxes (x, y, w, h; None where the object is absent), frame 0 first -> one
    `videorectangle` track.

    Keyframes sit where the box changes, and on the frame before each change, so that the editor's
    linear interpolation between enabled keyframes gives back every frame's box exactly. The last
    frame of each visible stretch that is followed by absence gets `enabled: false` (the editor
    shows it there and hides the object after it)."""
    sequence: list[dict] = []

    def add(frame_idx: int, box, enabled: bool) -> None:
        x, y, w, h = box
        if sequence and sequence[-1]["frame"] == frame_idx + 1:
            sequence.pop()
        sequence.append({"frame": frame_idx + 1, "enabled": enabled, "rotation": 0,
                         "x": x / width * 100, "y": y / height * 100,
                         "width": w / width * 100, "height": h / height * 100, "time": (frame_idx + 1) / fps})

    previous = None
    for frame_idx, box in enumerate(boxes):
        if box is not None and box != previous:
            if previous is not None and frame_idx - 1 != sequence[-1]["frame"] - 1:
                add(frame_idx - 1, previous, True)  # hold the old box until the change
            add(frame_idx, box, True)
        elif box is None and previous is not None:
            add(frame_idx - 1, previous, False)
        previous = box
    value = {"framesCount": len(boxes), "duration": len(boxes) / fps, "sequence": sequence,
             "labels": [label] if label else []}
    result = {"id": region_id, "from_name": from_name, "to_name": to_name, "type": "videorectangle",
              "origin": "prediction", "value": value}
    if score is not None:
        result["score"] = float(score)
    return result


def videorectangle_to_track(result: dict, width: int, height: int,
                            num_frames: int) -> list[tuple[float, float, float, float] | None]:
    """The inverse: the box (x, y, w, h pixels) the editor shows on each frame, None where hidden.
    Between enabled keyframes the editor interpolates linearly; after a disabled one the object is
    hidden until the next keyframe; after the last enabled one it stays."""
    sequence = sorted(keyframes(result), key=lambda k: k["frame"])
    track: list = [None] * num_frames
    for i, key in enumerate(sequence):
        nxt = sequence[i + 1] if i + 1 < len(sequence) else None
        start = key["frame"] - 1
        stop = (nxt["frame"] - 1) if nxt else num_frames
        for f in range(start, min(stop, num_frames)):
            if f == start:
                box = key
            elif not key["enabled"]:
                break
            elif nxt is None:
                box = key
            else:
                t = (f - start) / (stop - start)
                box = {k: key[k] + t * (nxt[k] - key[k]) for k in ("x", "y", "width", "height")}
            track[f] = (box["x"] / 100 * width, box["y"] / 100 * height,
                        box["width"] / 100 * width, box["height"] / 100 * height)
    return track
