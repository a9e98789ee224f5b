"""Prompt-free tracking of one video, as SA-V's automatic masklets were made: objects proposed on keyframes
(the automatic mask generator's masks, or detections' boxes; see `proposals.py`) become tracks, every track
is followed both ways, and a later keyframe adds only what no track covers yet.

One forward pass does the finding: on each keyframe, two tracks that have become one object lose the
younger; each proposal that matches no track (mask IoU or coverage; box IoU for detections) starts a new
track on that frame, with the next id (ids are stable for the whole video and never reused). Then one
backward pass follows the tracks found after frame 0 back to it, each from its own keyframe. Results stream
out frame by frame as the passes make them, with memory bounded as in `VideoSession`; what is only known
at the end, the tracks to discard (duplicates, and tracks visible on fewer than `min_frames` frames), is in
`dropped` once `run()` is exhausted.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .frames import FrameSource, open_frames
from .proposals import Proposal, ProposalSource
from .video_session import FrameResult, VideoSession

_ASSOCIATION_SIDE = 256  # masks are compared at about this resolution (thresholds do not need more)


@dataclass(frozen=True)
class DiscoveryOptions:
    """How proposals become tracks. Thresholds are in [0, 1]."""

    match_iou: float = 0.5  # a proposal is a track's object when their IoU (masks; boxes for detections) reaches it
    match_coverage: float = 0.7  # ... or when tracks already cover this share of a proposed mask
    duplicate_iou: float = 0.8  # two tracks overlapping this much on a keyframe are one object: the younger goes
    min_frames: int = 3  # tracks visible on fewer frames (at most the video's) are dropped (spurious, or gone at once)
    max_objects: int = 100  # tracks alive at once, at most; further proposals wait for a later keyframe
    backward: bool = True  # follow tracks found after frame 0 back to it (seekable videos)

    def __post_init__(self) -> None:
        for name in ("match_iou", "match_coverage", "duplicate_iou"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
        for name in ("min_frames", "max_objects"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass
class _Track:
    first_frame: int
    prompt: Proposal  # what started it (its mask packed with np.packbits), for the backward pass
    mask_shape: tuple[int, int] | None = None


class MaskletDiscovery:
    """`open_session()` makes a fresh session on the video for each pass: a `VideoSession`, or anything with
    its `frames`, `track`, `add_mask`, `add_points` and `remove_object` (see `for_model`)."""

    def __init__(self, open_session: Callable[[], VideoSession], proposals: ProposalSource,
                 options: DiscoveryOptions | None = None) -> None:
        self.open_session, self.proposals = open_session, proposals
        self.options = options or DiscoveryOptions()
        self.tracks: dict[int, _Track] = {}
        self.labels: dict[int, str] = {}  # obj_id -> class name, for tracks a labelled detection started
        self.dropped: set[int] = set()  # complete once run() is exhausted
        self._visible: Counter[int] = Counter()
        self._length = 0  # frames of the video, as the forward pass saw them

    @classmethod
    def for_model(cls, model, video, proposals: ProposalSource, options: DiscoveryOptions | None = None,
                  **session_options) -> MaskletDiscovery:
        """Our `VideoSession`s on `video` (anything `open_frames` reads), with `session_options`."""
        frames = video if isinstance(video, FrameSource) else open_frames(video)
        return cls(lambda: VideoSession(model, frames, **session_options), proposals, options)

    def run(self) -> Iterator[FrameResult]:
        """Every frame's tracks, forward pass first (frame by frame, a keyframe's new tracks in a second
        result for that frame), then the late tracks' earlier frames, latest first."""
        session = self.open_session()
        yield from self._forward(session)
        late = {i: t for i, t in self.tracks.items() if t.first_frame > 0 and i not in self.dropped}
        if late and self.options.backward and session.frames.seekable:
            yield from self._backward(late)
        # A video shorter than min_frames (an image is one frame) keeps the tracks seen on all of its frames.
        needed = min(self.options.min_frames, self._length)
        self.dropped |= {i for i in self.tracks if self._visible[i] < needed}

    def _forward(self, session: VideoSession) -> Iterator[FrameResult]:
        proposed_on = None
        for result in session.track(0):
            self._count(result)
            self._length = max(self._length, result.frame_idx + 1)
            if result.frame_idx != proposed_on and self.proposals.keyframe(result.frame_idx):
                proposed_on = result.frame_idx
                self._keyframe(session, result)
            yield _subset(result, [i for i in result.obj_ids if i not in self.dropped])

    def _backward(self, late: dict[int, _Track]) -> Iterator[FrameResult]:
        session = self.open_session()
        for obj_id, track in late.items():
            _prompt(session, track.first_frame, obj_id, _unpacked(track))
        for result in session.track(max(t.first_frame for t in late.values()), reverse=True):
            result = _subset(result, [i for i in result.obj_ids if late[i].first_frame > result.frame_idx])
            self._count(result)
            if result.obj_ids:
                yield result

    def _count(self, result: FrameResult) -> None:
        for obj_id, visible in zip(result.obj_ids, result.masks.flatten(1).any(1).tolist(), strict=True):
            self._visible[obj_id] += bool(visible)

    # ------------------------------------------------------------------------------------ keyframes
    def _keyframe(self, session: VideoSession, result: FrameResult) -> None:
        """Drop the younger of two tracks that became one object, then start a track for each proposal
        that no track (nor an earlier proposal of this frame) already holds."""
        opts = self.options
        ids = list(result.obj_ids)
        masks = _small(result.masks.numpy())
        boxes = [_mask_box(m) for m in result.masks.numpy()]
        for a, b in _overlapping_pairs(masks, opts.duplicate_iou):
            if ids[a] not in self.dropped and ids[b] not in self.dropped:
                younger = max(ids[a], ids[b], key=lambda i: (self.tracks[i].first_frame, i))
                self.dropped.add(younger)
                session.remove_object(younger)
        alive = [i for i, obj_id in enumerate(ids) if obj_id not in self.dropped]
        held_masks, held_boxes = [masks[i] for i in alive], [boxes[i] for i in alive]
        room = opts.max_objects - len(alive)
        for proposal in self.proposals.propose(result.frame_idx, result.image):
            if room <= 0:
                break
            if proposal.mask is not None:
                mask = _small(proposal.mask[None])[0]
                if not mask.any() or _held_mask(mask, held_masks, opts):
                    continue
                held_masks.append(mask)
            else:
                if _held_box(proposal.box, held_boxes, opts.match_iou):
                    continue
                held_boxes.append(proposal.box)
            self._start(session, result.frame_idx, proposal)
            room -= 1

    def _start(self, session: VideoSession, frame_idx: int, proposal: Proposal) -> None:
        obj_id = max(self.tracks, default=0) + 1
        _prompt(session, frame_idx, obj_id, proposal)
        packed, shape = proposal, None
        if proposal.mask is not None:
            shape = proposal.mask.shape
            packed = Proposal(mask=np.packbits(proposal.mask), label=proposal.label, score=proposal.score)
        self.tracks[obj_id] = _Track(frame_idx, packed, shape)
        if proposal.label is not None:
            self.labels[obj_id] = proposal.label


def _prompt(session: VideoSession, frame_idx: int, obj_id: int, proposal: Proposal) -> None:
    if proposal.mask is not None:
        session.add_mask(frame_idx, obj_id, proposal.mask)
    else:
        session.add_points(frame_idx, obj_id, box=list(proposal.box))


def _unpacked(track: _Track) -> Proposal:
    if track.mask_shape is None:
        return track.prompt
    h, w = track.mask_shape
    mask = np.unpackbits(track.prompt.mask, count=h * w).reshape(h, w).astype(bool)
    return Proposal(mask=mask, label=track.prompt.label, score=track.prompt.score)


def _subset(result: FrameResult, keep: list) -> FrameResult:
    if len(keep) == len(result.obj_ids):
        return result
    idx = [result.obj_ids.index(i) for i in keep]
    return FrameResult(result.frame_idx, keep, result.logits[idx], result.scores[idx], result.ious[idx],
                       [result.prompted[i] for i in idx], result.image)


# ---------------------------------------------------------------------------------------- association
def _small(masks: np.ndarray) -> np.ndarray:
    """N x H x W bool -> N x h x w, every k-th pixel so that the long side is about _ASSOCIATION_SIDE."""
    step = max(1, math.ceil(max(masks.shape[-2:]) / _ASSOCIATION_SIDE))
    return np.ascontiguousarray(masks[:, ::step, ::step])


def _mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """x0, y0, x1, y1 pixel box of an H x W bool mask (None when empty)."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return None
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def _overlapping_pairs(masks: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(a, b), a < b, of the masks whose IoU reaches `threshold`."""
    if len(masks) < 2:
        return []
    flat = torch.from_numpy(masks.reshape(len(masks), -1)).float()
    inter = flat @ flat.T
    area = flat.sum(1)
    iou = inter / (area[:, None] + area[None, :] - inter).clamp(min=1)
    a, b = torch.nonzero(torch.triu(iou >= threshold, diagonal=1) & (inter > 0), as_tuple=True)
    return list(zip(a.tolist(), b.tolist(), strict=True))


def _held_mask(mask: np.ndarray, held: list[np.ndarray], opts: DiscoveryOptions) -> bool:
    """Whether a track (or a proposal already taken) holds this proposed mask: IoU with one of them, or the
    share of it they cover together."""
    if not held:
        return False
    stack = np.stack(held)
    inter = (stack & mask).sum((1, 2))
    union = (stack | mask).sum((1, 2))
    if (inter / np.maximum(union, 1) >= opts.match_iou).any():
        return True
    return (stack.any(0) & mask).sum() / mask.sum() >= opts.match_coverage


def _held_box(box, held: list, threshold: float) -> bool:
    return any(other is not None and box_iou(box, other) >= threshold for other in held)


def box_iou(a, b) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
