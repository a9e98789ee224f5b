"""The synthetic video generator and DAVIS-style folders."""

from __future__ import annotations

import numpy as np
import pytest

from sam2.data import davis
from sam2.data.mp4 import write_mp4
from sam2.data.synthetic import ClipSpec, generate_clip
from sam2.frames import open_frames


def test_same_seed_same_clip_other_seed_other_clip():
    a, b, c = generate_clip(7), generate_clip(7), generate_clip(8)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.masks, b.masks) and a.tags == b.tags
    assert a.frames.shape != c.frames.shape or not np.array_equal(a.frames, c.frames)


def test_masks_are_exclusive_and_every_object_is_clear_on_frame_0():
    for seed in range(10):
        clip = generate_clip(seed, ClipSpec(num_frames=12, height=96, width=128))
        assert clip.frames.shape == (12, 96, 128, 3) and clip.frames.dtype == np.uint8
        assert clip.masks.shape == (12, len(clip.obj_ids), 96, 128)
        assert clip.masks.sum(axis=1).max() <= 1, "a pixel belongs to one object at most"
        assert (clip.masks[0].sum(axis=(1, 2)) >= 30).all()
        assert 1 <= len(clip.obj_ids) <= 5 and clip.tags["num_objects"] == len(clip.obj_ids)


def test_masks_follow_the_pixels():
    """Where an object's mask starts, the image changes: the object edge is visible, not invented."""
    clip = generate_clip(3, ClipSpec(num_frames=4))
    frame, masks = clip.frames[0].astype(float), clip.masks[0]
    for mask in masks:
        inner = frame[mask].mean(axis=0)
        ring = np.zeros_like(mask)
        ys, xs = np.nonzero(mask)
        ring[max(ys.min() - 3, 0): ys.max() + 4, max(xs.min() - 3, 0): xs.max() + 4] = True
        outside = ring & ~masks.any(axis=0)
        if outside.sum() > 20:
            assert np.abs(frame[outside].mean(axis=0) - inner).max() > 1.0


def test_rendering_some_frames_gives_those_frames_of_the_whole_clip():
    spec = ClipSpec(num_frames=12, height=64, width=96)
    for seed in range(8):
        whole = generate_clip(seed, spec)
        for frames in ([5], [0, 3, 11], [2, 4, 6, 8]):
            part = generate_clip(seed, spec, frames)
            assert np.array_equal(part.frames, whole.frames[frames]) and np.array_equal(part.masks, whole.masks[frames])
    for bad in ([], [3, 3], [4, 2], [12], [-1]):
        with pytest.raises(ValueError, match="increasing indices"):
            generate_clip(0, spec, bad)


@pytest.mark.parametrize("knob, tag", [("p_exit", "exit_reentry"), ("p_occluder", "occlusion"),
                                       ("p_distractor", "distractors")])
def test_each_difficulty_can_be_forced_and_is_tagged(knob, tag):
    off = ClipSpec(num_frames=24, p_exit=0.0, p_occluder=0.0, p_distractor=0.0, max_objects=1, clutter=0)
    on = ClipSpec(**{**off.__dict__, knob: 1.0})
    tagged_on = [generate_clip(s, on).tags[tag] for s in range(12)]
    assert sum(tagged_on) >= 6, tagged_on
    assert not any(generate_clip(s, off).tags[tag] for s in range(12))  # one object, nothing in front


def test_davis_folder_round_trip(tmp_path):
    clip = generate_clip(11, ClipSpec(num_frames=5, height=64, width=96))
    ids = [3 + 2 * i for i in range(len(clip.obj_ids))]  # any ids, not only 1..N
    davis.write_video(tmp_path, "clip", clip.frames, clip.masks, ids)
    frames, masks, read_ids = davis.read_video(tmp_path, "clip")
    assert read_ids == ids and davis.video_names(tmp_path) == ["clip"]
    assert np.array_equal(masks, clip.masks)
    assert np.abs(frames.astype(int) - clip.frames).mean() < 8  # JPEG of noisy textures


def test_mp4_reads_back_with_every_frame(tmp_path):
    clip = generate_clip(2, ClipSpec(num_frames=9, height=64, width=96))
    source = open_frames(str(write_mp4(clip.frames, tmp_path / "c.mp4")))
    assert source.num_frames == 9
