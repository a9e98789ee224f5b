"""A tracker written for the tests: another "model family" behind the tracker seam, which answers each
prompted object with a generated clip's true masks."""

from __future__ import annotations

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
