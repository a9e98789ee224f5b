"""Prompt-free tracking (`sam2.masklet_discovery`): proposals on keyframes become tracks, followed both ways,
one per object. The association is checked exactly on a tracker that answers with the true masks
(`GroundTruthSession`), then once on our model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam2.data.synthetic import ClipSpec, generate_clip
from sam2.evaluation.tracks import match_tracks
from sam2.masklet_discovery import DiscoveryOptions, MaskletDiscovery
from sam2.proposals import Proposal
from tests.support.trackers import GroundTruthSession

# Four objects: two on screen from frame 0, one walking in on frame 7, one on frame 12; objects leave and
# come back, and pass in front of each other.
CLIP = generate_clip(30000106, ClipSpec(num_frames=20, height=96, width=128, min_objects=3, max_objects=4,
                                        p_exit=0.5, p_late_entry=0.5, p_distractor=0))
EVERY = 4


def truth(clip=CLIP) -> dict[int, dict[int, np.ndarray]]:
    return {t: {i + 1: m for i, m in enumerate(clip.masks[t]) if m.any()} for t in range(clip.num_frames)}


def box_of(mask: np.ndarray) -> tuple[float, float, float, float]:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


class TrueMasks:
    """The generator's part: every visible object's mask on every EVERY-th frame, each twice."""

    def __init__(self, clip=CLIP, every=EVERY) -> None:
        self.clip, self.every, self.calls = clip, every, []

    def keyframe(self, t):
        return t % self.every == 0

    def propose(self, t, image):
        self.calls.append(t)
        assert image.shape == self.clip.frames[t].shape
        return [Proposal(mask=m, score=0.9) for m in self.clip.masks[t] if m.any()] * 2


def run(discovery: MaskletDiscovery) -> dict[int, dict[int, np.ndarray]]:
    """frame -> track -> mask, the dropped tracks left out (as the store leaves them out)."""
    tracks: dict[int, dict[int, np.ndarray]] = {}
    for result in discovery.run():
        for obj_id, mask in zip(result.obj_ids, result.masks.numpy(), strict=True):
            assert obj_id not in tracks.get(result.frame_idx, {}), "one mask per track and frame"
            tracks.setdefault(result.frame_idx, {})[obj_id] = mask
    return {t: {o: m for o, m in masks.items() if o not in discovery.dropped} for t, masks in tracks.items()}


def test_every_object_gets_exactly_one_track_followed_both_ways():
    assert CLIP.tags["late_entry"] and CLIP.tags["exit_reentry"]
    proposals = TrueMasks()
    discovery = MaskletDiscovery(lambda: GroundTruthSession(CLIP), proposals)
    tracks = run(discovery)
    assert proposals.calls == list(range(0, 20, EVERY))
    matching = match_tracks(truth(), tracks, min_frames=EVERY)
    assert (matching.recall, matching.duplicates, matching.spurious) == (1.0, (), ())
    assert len(matching.objects) == CLIP.masks.shape[1]
    by_object = {m.gt_id: m.track_id for m in matching.objects}
    assert sorted(discovery.tracks) == [1, 2, 3, 4]  # ids in the order found
    assert {discovery.tracks[by_object[o]].first_frame for o in (2, 3)} == {8, 12}
    for obj, track in by_object.items():  # the whole object, on every frame: before its keyframe too
        for t in range(CLIP.num_frames):
            expected = CLIP.masks[t, obj - 1]
            assert np.array_equal(tracks.get(t, {}).get(track, np.zeros_like(expected)), expected), (obj, t)


def test_a_track_that_lost_its_object_keeps_it_and_the_second_track_is_dropped():
    lost = 0  # object 1 is missed on frames 3-5: keyframe 4 proposes it again
    discovery = MaskletDiscovery(lambda: GroundTruthSession(CLIP, lose={lost: {3, 4, 5}}), TrueMasks())
    tracks = run(discovery)
    first = {i: t.first_frame for i, t in discovery.tracks.items()}
    second = next(i for i, f in first.items() if f == 4)
    assert second in discovery.dropped  # on keyframe 8 both tracks hold the object: the younger goes
    matching = match_tracks(truth(), tracks, min_frames=EVERY)
    assert (matching.recall, matching.duplicates) == (1.0, ())
    assert not any(second in masks for masks in tracks.values())


def test_tracks_visible_on_too_few_frames_are_dropped():
    class WithSpeck(TrueMasks):
        def propose(self, t, image):
            speck = np.zeros(image.shape[:2], bool)
            speck[0:2, 0:2] = t == 0  # nothing there: the track has its prompt frame only
            return super().propose(t, image) + ([Proposal(mask=speck)] if t == 0 else [])

    discovery = MaskletDiscovery(lambda: GroundTruthSession(CLIP), WithSpeck(), DiscoveryOptions(min_frames=3))
    tracks = run(discovery)
    speck = next(i for i, t in discovery.tracks.items() if t.prompt.mask is not None and t.first_frame == 0
                 and not any(i in masks and masks[i].any() for f, masks in tracks.items() if f > 0))
    assert speck in discovery.dropped
    assert match_tracks(truth(), tracks, min_frames=EVERY).spurious == ()


def test_noisy_missing_and_duplicate_detections_carry_their_labels():
    rng = np.random.default_rng(0)

    class Detections:
        """Boxes jittered by up to 8% of their size, each object missed on one keyframe in three, every box
        twice on frame 8, class names from the object's index."""

        def keyframe(self, t):
            return t % EVERY == 0

        def propose(self, t, image):
            out = []
            for i, mask in enumerate(CLIP.masks[t]):
                if not mask.any() or (t // EVERY + i) % 3 == 1:
                    continue
                x0, y0, x1, y1 = box_of(mask)
                jitter = rng.uniform(-0.08, 0.08, 4) * [x1 - x0, y1 - y0, x1 - x0, y1 - y0]
                out.append(Proposal(box=tuple(np.array([x0, y0, x1, y1]) + jitter), label=f"kind{i + 1}", score=0.8))
            return out * (2 if t == 8 else 1)

    discovery = MaskletDiscovery(lambda: GroundTruthSession(CLIP), Detections())
    tracks = run(discovery)
    matching = match_tracks(truth(), tracks, min_frames=2 * EVERY)
    assert (matching.recall, matching.duplicates) == (1.0, ())
    for m in matching.objects:
        if m.counted:
            assert discovery.labels[m.track_id] == f"kind{m.gt_id}"


def test_no_more_tracks_than_max_objects():
    discovery = MaskletDiscovery(lambda: GroundTruthSession(CLIP), TrueMasks(), DiscoveryOptions(max_objects=2))
    run(discovery)
    assert len(discovery.tracks) == 2


def test_without_the_backward_pass_late_tracks_start_on_their_keyframe():
    discovery = MaskletDiscovery(lambda: GroundTruthSession(CLIP), TrueMasks(), DiscoveryOptions(backward=False))
    tracks = run(discovery)
    for obj_id, track in discovery.tracks.items():
        assert min(t for t, masks in tracks.items() if obj_id in masks) == track.first_frame


@pytest.fixture(scope="module")
def model():
    from sam2.build_sam import build_sam2_video_predictor

    torch.manual_seed(0)
    return build_sam2_video_predictor("sam2.1_hiera_mini", "bundled", device="cpu")


def test_our_model_tracks_what_it_is_given_and_streams_every_frame(model):
    clip = generate_clip(30000106, ClipSpec(num_frames=10, height=96, width=128, min_objects=3, max_objects=4,
                                            p_exit=0.5, p_late_entry=0.5, p_distractor=0))
    discovery = MaskletDiscovery.for_model(model, clip.frames, TrueMasks(clip))
    frames = []
    for result in discovery.run():
        frames.append(result.frame_idx)
        assert result.logits.shape[1:] == clip.frames.shape[1:3]
    late = [t.first_frame for t in discovery.tracks.values() if t.first_frame > 0]
    assert sorted(discovery.tracks) == list(range(1, len(discovery.tracks) + 1)) and late
    forward = [f for f in frames if frames.index(f) < len(frames) - max(late)] if late else frames
    assert sorted(set(forward)) == list(range(10))  # every frame of the forward pass, then the late tracks' past
    assert frames[-1] == 0


def test_memory_stays_within_the_window_however_long_the_video():
    """What a session holds per track is bounded by the memory bank (as in `VideoSession.run`), and discovery
    keeps one packed prompt mask per track: nothing grows with the number of frames."""
    from sam2.video_session import VideoSession
    from tests.support.clips import make_clip
    from tests.support.models import tiny_video_model

    clip, model, sessions = make_clip(60, 48, 64, num_objects=2, seed=1), tiny_video_model(), []

    def open_session():
        sessions.append(VideoSession(model, clip.frames))
        return sessions[-1]

    discovery = MaskletDiscovery(open_session, TrueMasks(clip, every=10))
    for _ in discovery.run():
        for obj in sessions[-1].objects.values():
            bank = obj.memory
            assert len(bank.non_cond) <= 15 and len(bank.cond) <= 1
            assert sum(out.maskmem is not None for out in bank.non_cond.values()) <= 6
            assert sum(out.pred_masks is not None for out in bank.non_cond.values()) <= 1
    assert all(track.prompt.mask.dtype == np.uint8 for track in discovery.tracks.values())  # packed bits
