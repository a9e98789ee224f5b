"""A tracker written for the tests: another "model family" behind the tracker seam, which answers each
prompted object with a generated clip's true masks."""

from __future__ import annotations

import numpy as np
import torch

from sam2_ray.replica import ModelSpec
from sam2_ray.trackers import TrackedFrame
from tests.support.clips import make_clip

CLIP = make_clip(6, 40, 56, num_objects=2, seed=3)


class GroundTruthTracker:
    """Another 'model family': it answers each prompted object with the clip's true masks."""

    name = "ground-truth"

    def __init__(self, clip=CLIP) -> None:
        self.clip, self.closed = clip, 0

    def open(self, uri: str, name: str | None = None):
        tracker = self

        class Session:
            num_frames, height, width = tracker.clip.frames.shape[:3]
            objects: dict[int, int] = {}

            def add_points(self, frame_idx, obj_id, points=(), labels=(), box=None):
                self.objects[obj_id] = frame_idx

            def add_mask(self, frame_idx, obj_id, mask):
                self.objects[obj_id] = frame_idx

            def propagate(self, backward=True):
                for t in range(self.num_frames):
                    ids = sorted(self.objects)
                    yield TrackedFrame(t, {o: tracker.clip.masks[t, o - 1] for o in ids}, dict.fromkeys(ids, 1.0),
                                       {o: self.objects[o] == t for o in ids}, dict.fromkeys(ids, 0.9))

            def close(self):
                tracker.closed += 1

        return Session()


def ground_truth_tracker(spec: ModelSpec, device: str) -> GroundTruthTracker:
    return GroundTruthTracker()


class GroundTruthSession:
    """A `VideoSession` stand-in for prompt-free tracking (`sam2.masklet_discovery`), exact where a model is
    not: an object prompted with a mask or a box becomes the generated clip's object it overlaps most (none:
    the prompt stays its only mask), whose true mask comes back on every frame of a pass, empty where it is
    not visible. `lose`: {object index: frames} where it misses the object, as a tracker that loses it."""

    def __init__(self, clip, lose: dict[int, set[int]] | None = None) -> None:
        from sam2.frames import open_frames

        self.clip, self.lose = clip, lose or {}
        self.frames = open_frames(clip.frames, name="ground truth")
        self.objects: dict[int, tuple[int | None, int, np.ndarray]] = {}  # obj_id -> (index, frame, prompt mask)

    def add_mask(self, frame_idx, obj_id, mask):
        overlap = (self.clip.masks[frame_idx] & mask).sum((1, 2))
        self.objects[obj_id] = (int(overlap.argmax()) if overlap.max() > 0 else None, frame_idx, mask)

    def add_points(self, frame_idx, obj_id, points=None, labels=None, box=None):
        from sam2.masklet_discovery import box_iou

        x0, y0, x1, y1 = (int(round(v)) for v in box)
        mask = np.zeros(self.clip.masks.shape[2:], bool)
        mask[y0:y1, x0:x1] = True
        ious = [box_iou(box, _box(m)) if m.any() else 0.0 for m in self.clip.masks[frame_idx]]
        index = int(np.argmax(ious)) if max(ious) > 0 else None
        self.objects[obj_id] = (index, frame_idx, self.clip.masks[frame_idx, index] if index is not None else mask)

    def remove_object(self, obj_id):
        del self.objects[obj_id]

    def track(self, start=0, reverse=False):
        present: set[int] = set()
        for t in (range(start, -1, -1) if reverse else range(start, self.clip.num_frames)):
            present = {o for o in present if o in self.objects} | {o for o, (_, f, _) in self.objects.items() if f == t}
            yield self._result(t, sorted(present))
            joined = sorted(o for o, (_, f, _) in self.objects.items() if f == t and o not in present)
            if joined:
                present |= set(joined)
                yield self._result(t, joined)

    def _result(self, t, ids):
        from sam2.video_session import FrameResult

        masks = np.stack([self._mask(t, o) for o in ids]) if ids else np.zeros((0, *self.clip.masks.shape[2:]), bool)
        logits = torch.from_numpy(masks).float() * 20 - 10
        return FrameResult(t, ids, logits, torch.ones(len(ids)), torch.full((len(ids),), 0.9),
                           [self.objects[o][1] == t for o in ids], image=self.clip.frames[t])

    def _mask(self, t, obj_id):
        index, frame, prompt = self.objects[obj_id]
        if t == frame:
            return prompt
        if index is None or t in self.lose.get(index, ()):
            return np.zeros(self.clip.masks.shape[2:], bool)
        return self.clip.masks[t, index]


def _box(mask):
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return cols[0], rows[0], cols[-1] + 1, rows[-1] + 1


# Clips of the prompt-free Ray test: "late-<seed>.mp4" is generate_clip(seed, LATE_SPEC).
LATE_SPEC = dict(num_frames=16, height=96, width=128, min_objects=3, max_objects=4, p_exit=0.5, p_late_entry=0.5,
                 p_distractor=0)


def late_entry_clip(uri: str):
    from pathlib import Path

    from sam2.data.synthetic import ClipSpec, generate_clip

    return generate_clip(int(Path(uri).stem.split("-")[1]), ClipSpec(**LATE_SPEC))


class GroundTruthDiscoveryTracker:
    """Prompt-free labelling with exact tracking, for the Ray path: `discover` runs our `MaskletDiscovery` on
    `GroundTruthSession`s, with the true masks as the generator's proposals (every `auto.every` frames) or the
    job's detections."""

    name = "ground-truth-discovery"

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    def open(self, uri: str, name: str | None = None):
        from sam2.masklet_discovery import MaskletDiscovery
        from sam2.proposals import Proposal
        from sam2_ray.prompt_free import ProposalFactory
        from sam2_ray.trackers import tracked_frame

        clip, auto = late_entry_clip(uri), self.spec.auto

        class TrueMasks:
            def keyframe(self, t):
                return t % auto.every == 0

            def propose(self, t, image):
                return [Proposal(mask=m) for m in clip.masks[t] if m.any()]

        class Discovery:
            def __init__(self, discovery):
                self.discovery, self.labels, self.dropped = discovery, discovery.labels, discovery.dropped

            def frames(self):
                for result in self.discovery.run():
                    yield tracked_frame(result)
                self.dropped = self.discovery.dropped

        class Session:
            num_frames, height, width = clip.frames.shape[:3]

            def discover(self, mode, detections=()):
                proposals = TrueMasks() if mode == "everything" else ProposalFactory(auto, None).proposals(
                    mode, detections)
                return Discovery(MaskletDiscovery(lambda: GroundTruthSession(clip), proposals, auto.tracks))

            def close(self):
                pass

        return Session()


def ground_truth_discovery_tracker(spec: ModelSpec, device: str) -> GroundTruthDiscoveryTracker:
    return GroundTruthDiscoveryTracker(spec)
