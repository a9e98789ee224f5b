"""The synthetic video generator and DAVIS-style folders."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from sam2.data import davis
from sam2.data.mp4 import write_mp4
from sam2.data.synthetic import HELD_OUT_SEEDS, ClipSpec, generate_clip, held_out_clips
from sam2.frames import open_frames
from sam2.training import data as training_data
from sam2.training.config import load_train_config
from tests.support.paths import REPO


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
                                       ("p_distractor", "distractors"), ("p_late_entry", "late_entry"),
                                       ("p_early_exit", "early_exit")])
def test_each_difficulty_can_be_forced_and_is_tagged(knob, tag):
    off = ClipSpec(num_frames=24, p_exit=0.0, p_occluder=0.0, p_distractor=0.0, max_objects=1, clutter=0)
    on = ClipSpec(**{**off.__dict__, knob: 1.0})
    tagged_on = [generate_clip(s, on).tags[tag] for s in range(12)]
    assert sum(tagged_on) >= 6, tagged_on
    assert not any(generate_clip(s, off).tags[tag] for s in range(12))  # one object, nothing in front


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


@pytest.mark.parametrize("seed, spec, frames, masks", [
    (3, ClipSpec(num_frames=6, height=64, width=96), "97862bf77b677001", "3a4e3d2171289c66"),
    (11, ClipSpec(num_frames=6, height=64, width=96), "240454d79f299021", "0d2fffed1c36b72b"),
    (5, ClipSpec(num_frames=10, height=64, width=96, p_exit=1.0, p_occluder=1.0, p_distractor=1.0),
     "691a96de2091902f", "a021e3d0d9764a16"),
])
def test_clips_are_pinned_so_new_knobs_left_off_change_no_pixel(seed, spec, frames, masks):
    """Digests of clips made before late entry and early exit existed: with those knobs at 0 (the
    default) every clip is byte-identical, so bundled samples and past benchmark numbers still hold."""
    clip = generate_clip(seed, spec)
    assert (_digest(clip.frames), _digest(clip.masks)) == (frames, masks)
    assert not clip.tags["late_entry"]


def test_late_objects_are_off_screen_on_frame_0_and_walk_in_to_stay_for_many_frames():
    spec = ClipSpec(num_frames=24, height=96, width=128, min_objects=2, p_late_entry=0.5, p_exit=0.0)
    late_seen = 0
    for seed in range(8):
        clip = generate_clip(seed, spec)
        visible = clip.masks.sum(axis=(2, 3))  # T x N pixels
        late = visible[0] == 0
        assert clip.tags["late_entry"] == bool(late.any())
        assert (visible[0][~late] >= 30).all(), "the others are clear on frame 0, as without the knob"
        for n in np.flatnonzero(late):
            first = int(np.argmax(visible[:, n] > 0))
            assert 1 <= first <= 0.45 * spec.num_frames, (seed, n, first)
            assert (visible[first:, n] >= 30).sum() >= 10, (seed, n, visible[:, n])
        late_seen += int(late.sum())
    assert late_seen >= 6


def test_early_exits_leave_for_good_before_the_end():
    spec = ClipSpec(num_frames=24, height=96, width=128, p_early_exit=1.0, p_exit=0.0)
    for seed in range(6):
        clip = generate_clip(seed, spec)
        visible = clip.masks.sum(axis=(2, 3))
        assert (visible[0] >= 30).all() and (visible[-1] == 0).all(), (seed, visible)
        gone = [int(np.flatnonzero(visible[:, n])[-1]) + 1 for n in range(visible.shape[1])]
        assert all(0.6 * 23 <= g < 24 for g in gone), gone
        assert all(not visible[g:, n].any() for n, g in enumerate(gone)), "no coming back"
        assert clip.tags["early_exit"] and not clip.tags["late_entry"]


def test_held_out_clips_use_seeds_no_shipped_training_recipe_draws(monkeypatch):
    """Every clip seed the sampler asks the generator for, at the first and last step of each config
    in configs/training on 1 to 8 workers, lies outside HELD_OUT_SEEDS (seeds only grow with the step)."""
    drawn: list[int] = []

    def record(seed, spec, frames=None):  # an empty clip: the sampler tries all its attempts
        drawn.append(seed)
        return type("Empty", (), {"frames": np.zeros((1, 8, 8, 3), np.uint8), "masks": np.zeros((1, 1, 8, 8), bool)})

    monkeypatch.setattr(training_data, "generate_clip", record)
    configs = sorted((REPO / "configs" / "training").glob("*.yaml"))
    assert configs
    for path in configs:
        config = load_train_config(path)
        sampler = training_data.ClipSampler(config.data, image_size=32)
        per_step = config.data.images_per_step if config.stage == "image" else 1  # trainer.images_loss
        for world in (1, 2, 8):
            for step in (0, config.steps - 1):
                for rank in {0, world - 1}:
                    clip_seed = config.seed * 1_000_003 + step * world + rank  # as trainer.train derives it
                    for i in range(per_step):
                        with pytest.raises(ValueError, match="no clip with a visible object"):
                            sampler.sample(clip_seed * per_step + i)
    assert drawn and not any(seed in HELD_OUT_SEEDS for seed in drawn), (min(drawn), max(drawn))
    seeds = [seed for seed, _ in held_out_clips(ClipSpec(num_frames=2, height=32, width=48), count=2, start=5)]
    assert seeds == [HELD_OUT_SEEDS[5], HELD_OUT_SEEDS[6]] == [10_000_005, 10_000_006]


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
