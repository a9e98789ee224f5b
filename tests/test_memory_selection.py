"""The quality memory-selection option: off by default (SAM 2's last frames), the best recent frames when on,
memory still bounded, chosen from the pipeline YAML."""

from __future__ import annotations

import pytest
import torch
import yaml

from pipelines.errors import InvalidInput
from pipelines.settings import load_settings
from sam2.memory_bank import RECENT, FrameOutput, MemorySelection
from sam2.video_session import VideoSession
from sam2_ray.replica import ModelSpec
from tests.support.clips import make_clip
from tests.support.models import tiny_video_model

NUM_MASKMEM = 7


def _out(iou: float, present: bool = True) -> FrameOutput:
    return FrameOutput(None, torch.zeros(1, 8), torch.tensor([[2.0 if present else -2.0]]), torch.tensor([[iou]]),
                       torch.zeros(1, 2, 2, 2))


def _picked(selection: MemorySelection, non_cond: dict, frame: int, step: int = -1) -> list[tuple[int, int]]:
    """-> [(slot, frame)] of the selected memories."""
    by_id = {id(out): t for t, out in non_cond.items()}
    return [(slot, by_id[id(out)]) for slot, out in selection.spatial(non_cond, frame, step, NUM_MASKMEM)]


def test_recent_is_sam2s_last_six_frames_at_slots_one_to_six():
    non_cond = {t: _out(0.5) for t in range(20)}
    assert _picked(RECENT, non_cond, 20) == [(1, 14), (2, 15), (3, 16), (4, 17), (5, 18), (6, 19)]
    assert _picked(RECENT, non_cond, 3) == [(4, 0), (5, 1), (6, 2)]
    assert _picked(RECENT, non_cond, 5, step=1) == [(1, 11), (2, 10), (3, 9), (4, 8), (5, 7), (6, 6)]


def test_quality_keeps_the_last_frame_then_the_best_present_ones_of_the_window():
    non_cond = {t: _out(0.9 if t % 3 == 0 else 0.2) for t in range(30)}
    non_cond[27] = _out(0.99, present=False)  # the object was judged absent there: not chosen over present ones
    picked = _picked(MemorySelection("quality", window=16), non_cond, 30)
    # the most recent frame always; then the present frames by predicted IoU (0.9 every third frame), nearest
    # first among equals; frame 27 scored best but was judged absent
    assert picked == [(1, 15), (1, 18), (1, 21), (1, 24), (5, 28), (6, 29)]  # farther than 6 back: the farthest slot


def test_quality_uses_only_frames_whose_memory_is_still_held():
    non_cond = {t: _out(0.9) for t in range(10)}
    for t in range(0, 6):
        non_cond[t].maskmem = None
    assert [t for _, t in _picked(MemorySelection("quality", window=16), non_cond, 10)] == [6, 7, 8, 9]


@pytest.mark.parametrize("mode, window", [("best", 16), ("quality", 0)])
def test_bad_values_are_refused_where_the_settings_are_read(mode, window, tmp_path):
    with pytest.raises(ValueError):
        MemorySelection(mode, window)
    with pytest.raises(ValueError):
        ModelSpec(memory_selection=mode, memory_window=window)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"model": {"config": "sam2.1_hiera_t", "memory_selection": mode,
                                                               "memory_window": window}}))
    with pytest.raises(InvalidInput, match="memory selection"):
        load_settings(tmp_path / "p.yaml")


def test_a_quality_session_tracks_a_long_clip_holding_a_bounded_memory():
    clip = make_clip(40, 48, 64, num_objects=1, seed=4)
    selection = MemorySelection("quality", window=8)
    session = VideoSession(tiny_video_model(), clip.frames, memory_selection=selection)
    session.add_points(0, 1, box=[0, 0, 30, 30])
    held = []
    for result in session.run():
        memory = session.objects[1].memory
        held.append(sum(out.maskmem is not None for out in memory.non_cond.values()))
        assert result.masks.shape == (1, 48, 64)
    # the window, plus the frames after the first prompt pinned for a backward pass: not the video length
    assert len(held) == 40 and max(held) <= 2 * (selection.reach(NUM_MASKMEM) + 1) and held[-1] == held[25]


def test_the_default_session_and_tracker_select_like_sam2():
    assert VideoSession(tiny_video_model(), make_clip(2, 16, 16).frames).memory_selection == RECENT
    assert ModelSpec().selection == RECENT
