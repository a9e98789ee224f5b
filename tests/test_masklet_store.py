"""Masklet store: atomic per-video Parquet files, a manifest, RLE that round-trips exactly."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest

from sam2 import rle
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import MaskletRow


def _row(video_id: str, obj_id: int, frame_idx: int, mask: np.ndarray) -> MaskletRow:
    return MaskletRow.from_mask(video_id, obj_id, frame_idx, mask, 0.5, 0.75, frame_idx == 0,
                                "sam2.1_hiera_t")  # scores exact in float32


def _masks(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((30, 40)) > 0.6 for _ in range(n)]


def test_rle_round_trip_box_and_area_are_exact():
    mask = np.zeros((30, 40), bool)
    mask[5:12, 7:20] = True
    counts = rle.encode(mask)
    np.testing.assert_array_equal(rle.decode(counts, 30, 40), mask)
    assert rle.bbox_and_area(counts, 30, 40) == ((7.0, 5.0, 13.0, 7.0), 91)
    assert rle.bbox_and_area(rle.encode(np.zeros((3, 3), bool)), 3, 3) == ((0.0, 0.0, 0.0, 0.0), 0)


def test_written_video_reads_back_as_rows_masks_and_one_table(tmp_path):
    store = MaskletStore(tmp_path)
    masks = _masks(6)
    rows = [_row("a/b c", obj, frame, masks[obj * 3 + frame]) for obj in (0, 1) for frame in range(3)]
    store.write_video("a/b c", rows, model="t")
    store.write_video("other", [_row("other", 5, 0, masks[0])])
    assert store.done() == {"a/b c", "other"}
    assert list(store.rows("a/b c")) == rows
    decoded = list(store.masklets("a/b c", obj_id=1))
    assert [(o, f) for o, f, _ in decoded] == [(1, 0), (1, 1), (1, 2)]
    np.testing.assert_array_equal(decoded[2][2], masks[5])
    table = store.table()
    assert table.num_rows == 7 and set(table.column("video_id").to_pylist()) == {"a/b c", "other"}
    assert store.manifest()["a/b c"] | {"finished": 0} == {"video_id": "a/b c", "rows": 6, "frames": 3,
                                                          "objects": 2, "finished": 0, "model": "t"}


def test_a_failed_video_leaves_no_file(tmp_path):
    store = MaskletStore(tmp_path)

    def rows():
        yield _row("v", 0, 0, _masks(1)[0])
        raise RuntimeError("decoder died")

    with pytest.raises(RuntimeError):
        store.write_video("v", rows())
    assert store.done() == set() and not list((tmp_path / "tmp").iterdir())
    assert store.manifest() == {}


def _die_while_writing(root: str) -> None:
    store = MaskletStore(root)
    writer = store.writer("killed")
    writer.add(_row("killed", 0, f, m) for f, m in enumerate(_masks(600)))
    os._exit(1)  # the process dies before commit: no cleanup runs


def test_a_killed_writer_leaves_no_partial_file_and_its_temp_is_discarded(tmp_path):
    process = multiprocessing.get_context("fork").Process(target=_die_while_writing, args=(str(tmp_path),))
    process.start()
    process.join()
    store = MaskletStore(tmp_path)
    assert store.done() == set() and not store.is_done("killed")
    assert store.discard_partial() == 1
    with pytest.raises(KeyError, match="not in the store"):
        store.read_video("killed")


def test_discarding_partial_files_keeps_those_of_writers_still_writing(tmp_path):
    """Another run (or replica) writing to the same store keeps its temporary file through a sweep."""
    store = MaskletStore(tmp_path)
    live = store.writer("live")
    live.add(_row("live", 0, f, m) for f, m in enumerate(_masks(600)))  # flushed row groups on disk
    process = multiprocessing.get_context("fork").Process(target=_die_while_writing, args=(str(tmp_path),))
    process.start()
    process.join()
    assert len(list((tmp_path / "tmp").iterdir())) == 2
    assert store.discard_partial() == 1
    assert [p.name for p in (tmp_path / "tmp").iterdir()] == [live.tmp.name]
    live.commit()
    assert store.done() == {"live"} and len(list(store.rows("live"))) == 600


def test_rows_of_another_video_are_refused(tmp_path):
    store = MaskletStore(tmp_path)
    with pytest.raises(ValueError, match="written to video 'v'"):
        store.write_video("v", [_row("w", 0, 0, _masks(1)[0])])
    assert store.done() == set()
