"""Which frames a person should look at first: where an object's presence score or predicted IoU
is low or falls sharply, and where a track vanishes and comes back (an occlusion the model may or
may not have bridged, or an identity switch). Plain data in, plain data out; no FiftyOne here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

REVIEW_TAG = "needs_review"


@dataclass(frozen=True)
class ReviewRules:
    min_score: float = 0.7  # object presence probability of a present object
    min_iou: float = 0.5  # the model's predicted IoU of a present object's mask
    max_drop: float = 0.3  # fall of either from the object's previous present frame
    reappearance: bool = True  # flag the frames where a track vanishes and where it comes back

    def __post_init__(self) -> None:
        for name in ("min_score", "min_iou", "max_drop"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"review rule {name} must be in [0, 1], got {getattr(self, name)!r}")


DEFAULT_RULES = ReviewRules()


@dataclass(frozen=True)
class Observation:
    """One object on one frame as the store holds it."""

    obj_id: int
    frame_idx: int
    present: bool  # a non-empty mask
    score: float
    iou: float


def flag_frames(observations: Iterable[Observation], rules: ReviewRules = DEFAULT_RULES) -> dict[int, dict[int, str]]:
    """frame_idx -> obj_id -> why the frame needs review (frames with nothing doubtful are absent).
    An object missing from a frame counts as absent there."""
    tracks: dict[int, dict[int, Observation]] = defaultdict(dict)
    frames: set[int] = set()
    for o in observations:
        tracks[o.obj_id][o.frame_idx] = o
        frames.add(o.frame_idx)
    order = sorted(frames)
    flags: dict[int, dict[int, str]] = defaultdict(dict)

    def flag(frame_idx: int, obj_id: int, reason: str) -> None:
        flags[frame_idx].setdefault(obj_id, reason)

    for obj_id, track in tracks.items():
        previous = None  # the last frame the object was present on
        gap_start = None  # first absent frame after a present one
        for frame_idx in order:
            o = track.get(frame_idx)
            if o is None or not o.present:
                if previous is not None and gap_start is None:
                    gap_start = frame_idx
                continue
            if gap_start is not None and rules.reappearance:
                flag(gap_start, obj_id, f"object {obj_id} lost (reappears on frame {frame_idx + 1})")
                flag(frame_idx, obj_id, f"object {obj_id} reappears (lost since frame {gap_start + 1})")
            gap_start = None
            if o.score < rules.min_score:
                flag(frame_idx, obj_id, f"object {obj_id} score {o.score:.2f} < {rules.min_score:.2f}")
            elif o.iou < rules.min_iou:
                flag(frame_idx, obj_id, f"object {obj_id} predicted IoU {o.iou:.2f} < {rules.min_iou:.2f}")
            elif previous is not None and previous.score - o.score > rules.max_drop:
                flag(frame_idx, obj_id, f"object {obj_id} score drop {previous.score:.2f} -> {o.score:.2f}")
            elif previous is not None and previous.iou - o.iou > rules.max_drop:
                flag(frame_idx, obj_id, f"object {obj_id} predicted IoU drop {previous.iou:.2f} -> {o.iou:.2f}")
            previous = o
    return {f: dict(sorted(objs.items())) for f, objs in sorted(flags.items())}
