"""`sam2-ray export`: a masklet store as YouTube-VIS and COCO video JSON. Every exported mask decodes (with
pycocotools, as the formats' users decode them) to the stored mask; tracks, categories and frames survive;
the command fails in one line on bad input. Stores are written directly: no Ray, no model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO

from pipelines.cli import main
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import MaskletRow
from sam2_ray.video_instances import write_coco_video, write_youtube_vis

# video -> (height, width, frames, {obj_id: label}); obj 2 of cam-a is absent on frames 2 and 3, obj 7 of cam-b
# on every frame; obj 1 is in both videos (track ids are per video).
VIDEOS = {
    "cam-a": (24, 32, 6, {1: "car", 2: None, 5: "person"}),
    "cam/b 2": (40, 20, 4, {1: "car", 3: "bicycle", 7: None}),
}
ABSENT = {("cam-a", 2, 2), ("cam-a", 2, 3)} | {("cam/b 2", 7, f) for f in range(4)}


def _mask(video_id: str, obj_id: int, frame: int, height: int, width: int) -> np.ndarray:
    """A box moving one pixel a frame plus a sprinkle of pixels, so the RLE has many runs; empty where absent."""
    mask = np.zeros((height, width), bool)
    if (video_id, obj_id, frame) in ABSENT:
        return mask
    top, left = (obj_id * 3) % (height - 8), frame + obj_id
    mask[top:top + 6, left:left + 5 + obj_id % 3] = True
    mask |= np.random.default_rng([obj_id, frame, len(video_id)]).random((height, width)) > 0.97
    return mask


def _masks() -> dict[tuple[str, int, int], np.ndarray]:
    return {(v, o, f): _mask(v, o, f, h, w) for v, (h, w, n, objs) in VIDEOS.items() for o in objs for f in range(n)}


@pytest.fixture
def store(tmp_path):
    store = MaskletStore(tmp_path / "store")
    masks = _masks()
    for video_id, (_, _, frames, objs) in VIDEOS.items():
        rows = [MaskletRow.from_mask(video_id, obj_id, frame, masks[video_id, obj_id, frame], 0.25 + frame / 8,
                                     0.5, frame == 0, "test-model", label)
                for frame in range(frames) for obj_id, label in objs.items()]  # frame-major, as the labeller writes
        store.write_video(video_id, rows, model="test-model", uri=f"videos/{video_id}.mp4")
    store.write_video("empty", [])
    return store


def _video_ids(data: dict) -> dict[int, str]:
    return {v["id"]: v["name"] for v in data["videos"]}


def test_youtube_vis_masks_boxes_and_areas_are_the_stored_ones_frame_by_frame(store, tmp_path):
    out = tmp_path / "ytvis.json"
    write_youtube_vis(store, out)
    data = json.loads(out.read_text())
    masks, names = _masks(), _video_ids(data)
    seen = set()
    for ann in data["annotations"]:
        video_id, obj_id = names[ann["video_id"]], ann["obj_id"]
        height, width, frames, _ = VIDEOS[video_id]
        assert (ann["width"], ann["height"], ann["length"], ann["iscrowd"]) == (width, height, frames, 0)
        assert len(ann["segmentations"]) == len(ann["bboxes"]) == len(ann["areas"]) == frames
        for frame, (rle, bbox, area) in enumerate(zip(ann["segmentations"], ann["bboxes"], ann["areas"], strict=True)):
            if (video_id, obj_id, frame) in ABSENT:
                assert rle is bbox is area is None
                continue
            assert rle["size"] == [height, width] and isinstance(rle["counts"], str)
            np.testing.assert_array_equal(coco_mask.decode(rle).astype(bool), masks[video_id, obj_id, frame])
            assert bbox == coco_mask.toBbox(rle).tolist() and area == int(coco_mask.area(rle))
        present = [0.25 + f / 8 for f in range(frames) if (video_id, obj_id, f) not in ABSENT]
        assert ann["score"] == pytest.approx(sum(present) / len(present))
        seen.add((video_id, obj_id))
    assert seen == {("cam-a", 1), ("cam-a", 2), ("cam-a", 5), ("cam/b 2", 1), ("cam/b 2", 3)}  # 7: never present


def test_youtube_vis_videos_categories_and_track_ids(store, tmp_path):
    out = tmp_path / "ytvis.json"
    summary = write_youtube_vis(store, out)
    data = json.loads(out.read_text())
    assert set(data) == {"info", "licenses", "categories", "videos", "annotations"}
    assert data["categories"] == [{"id": i, "name": n, "supercategory": "object"}
                                  for i, n in enumerate(["bicycle", "car", "object", "person"], 1)]
    assert [(v["id"], v["name"], v["width"], v["height"], v["length"], v["uri"]) for v in data["videos"]] == [
        (1, "cam-a", 32, 24, 6, "videos/cam-a.mp4"), (2, "cam/b 2", 20, 40, 4, "videos/cam/b 2.mp4")]
    assert data["videos"][1]["file_names"] == [f"cam/b 2/{f:05d}.jpg" for f in range(4)]
    categories = {c["id"]: c["name"] for c in data["categories"]}
    tracks = {(v["video_id"], v["obj_id"]): (v["id"], categories[v["category_id"]]) for v in data["annotations"]}
    assert tracks == {(1, 1): (1, "car"), (1, 2): (2, "object"), (1, 5): (3, "person"),
                      (2, 1): (4, "car"), (2, 3): (5, "bicycle")}
    assert (summary.videos, summary.tracks, summary.annotations, summary.empty_videos) == (2, 5, 5, ["empty"])


def test_coco_video_loads_with_pycocotools_and_ann_to_mask_gives_the_stored_masks(store, tmp_path):
    out = tmp_path / "coco.json"
    summary = write_coco_video(store, out)
    coco = COCO(str(out))
    data = json.loads(out.read_text())
    masks, names = _masks(), _video_ids(data)
    images = {i["id"]: i for i in data["images"]}
    assert len(images) == 6 + 4  # one per frame of each video
    for image in images.values():
        height, width, frames, _ = VIDEOS[names[image["video_id"]]]
        assert (image["width"], image["height"]) == (width, height) and 0 <= image["frame_id"] < frames
        assert image["file_name"] == f"{names[image['video_id']]}/{image['frame_id']:05d}.jpg"
    exported = set()
    for ann in coco.loadAnns(coco.getAnnIds()):
        image = images[ann["image_id"]]
        assert image["video_id"] == ann["video_id"]
        key = (names[ann["video_id"]], ann["obj_id"], image["frame_id"])
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), masks[key])
        rle = coco.annToRLE(ann)
        assert ann["bbox"] == coco_mask.toBbox(rle).tolist() and ann["area"] == int(coco_mask.area(rle))
        assert ann["iscrowd"] == 0 and ann["score"] == pytest.approx(0.25 + image["frame_id"] / 8)
        exported.add(key)
    assert exported == {k for k, m in masks.items() if m.any()}  # absent objects are no annotations
    assert len(exported) == summary.annotations == len(data["annotations"])
    # instance_id: one per track over the whole file, although both videos have an obj_id 1
    instances = {(a["video_id"], a["obj_id"]): a["instance_id"] for a in data["annotations"]}
    assert instances == {(1, 1): 1, (1, 2): 2, (1, 5): 3, (2, 1): 4, (2, 3): 5}
    assert len({(a["instance_id"], a["video_id"], a["obj_id"]) for a in data["annotations"]}) == len(instances)
    assert {coco.cats[a["category_id"]]["name"] for a in data["annotations"] if a["obj_id"] == 2} == {"object"}
    assert [(v["id"], v["name"]) for v in data["videos"]] == [(1, "cam-a"), (2, "cam/b 2")]


def test_selected_videos_are_numbered_in_the_order_given_with_their_own_categories(store, tmp_path):
    out = tmp_path / "coco.json"
    write_coco_video(store, out, ["cam/b 2"])
    data = json.loads(out.read_text())
    assert [(v["id"], v["name"]) for v in data["videos"]] == [(1, "cam/b 2")]
    assert [c["name"] for c in data["categories"]] == ["bicycle", "car"]
    assert [i["id"] for i in data["images"]] == [1, 2, 3, 4]


def test_a_failed_export_leaves_no_file(store, tmp_path, monkeypatch):
    out = tmp_path / "ytvis.json"
    rows = store.rows

    def broken(video_id):
        if video_id == "cam/b 2":
            raise OSError("disk gone")
        return rows(video_id)

    monkeypatch.setattr(store, "rows", broken)
    with pytest.raises(OSError, match="disk gone"):
        write_youtube_vis(store, out)
    assert list(tmp_path.iterdir()) == [store.root]


@pytest.mark.parametrize("fmt, key", [("youtube-vis", "file_names"), ("coco-video", "images")])
def test_the_command_writes_the_file_and_reports_it(store, tmp_path, capsys, fmt, key):
    out = tmp_path / "exports" / "ds.json"
    assert main(["export", str(store.root), "--format", fmt, "--out", str(out), "--videos", "cam-a"]) == 0
    data = json.loads(out.read_text())
    assert [v["name"] for v in data["videos"]] == ["cam-a"] and (key in data or key in data["videos"][0])
    printed = capsys.readouterr().out
    assert str(out) in printed and "1 videos, 3 tracks" in printed


@pytest.mark.parametrize("argv, message", [
    (["{tmp}/nowhere", "--out", "{tmp}/x.json"], "not a masklet store (no videos/ folder): {tmp}/nowhere"),
    (["{store}", "--out", "{tmp}/x.json", "--videos", "cam-a,cam-z"], "not in the masklet store {store}: 'cam-z'"),
    (["{store}", "--out", "{store}/manifest.jsonl/x.json"], "cannot write {store}/manifest.jsonl/x.json"),
    (["{store}", "--out", "{tmp}"], "cannot write {tmp}: it is a folder"),
])
def test_bad_input_fails_in_one_line_with_exit_code_2_and_writes_nothing(store, tmp_path, capsys, argv, message):
    def fill(text: str) -> str:
        return text.format(tmp=tmp_path, store=store.root)

    before = sorted(tmp_path.rglob("*"))
    assert main(["export", *map(fill, argv), "--format", "coco-video"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sam2-ray: error: ") and len(err.strip().splitlines()) == 1, err
    assert fill(message) in err
    assert sorted(tmp_path.rglob("*")) == before


def test_the_length_is_the_recorded_frame_count_when_the_last_frames_have_no_object(tmp_path):
    """Prompt-free labelling writes rows only where it tracks something; the labeller records the video's
    frame count, and the export covers every frame of it."""
    store = MaskletStore(tmp_path / "store")
    mask = np.zeros((8, 8), bool)
    mask[1:4, 1:4] = True
    store.write_video("v", [MaskletRow.from_mask("v", 1, 2, mask, 0.9, 0.9, True, "m")], num_frames=7)
    write_youtube_vis(store, tmp_path / "out.json")
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["videos"][0]["length"] == 7 and len(data["videos"][0]["file_names"]) == 7
    (annotation,) = data["annotations"]
    assert [s is not None for s in annotation["segmentations"]] == [False, False, True, False, False, False, False]
