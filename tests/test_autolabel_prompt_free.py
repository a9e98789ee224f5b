"""`sam2-ray autolabel` without prompts, as a user runs it on a local Ray: manifest entries of mode
"everything" and "detections" (the manifest's own boxes, or the detector the pipeline YAML names) beside a
prompted one, into the same exactly-once store; a detector that raises or returns malformed boxes fails its
video with the reason, one that sees nothing gives an empty result with a note, and the rest completes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import yaml

from sam2.evaluation.tracks import match_tracks
from sam2_ray.masklet_store import MaskletStore
from tests.support.clips import write_mp4
from tests.support.detectors import CLIPS, FRAMES, PIPELINE, true_boxes, visible
from tests.support.paths import REPO


def test_prompt_free_entries_label_every_object_and_bad_detectors_fail_alone(tmp_path):
    for name, clip in CLIPS.items():
        write_mp4(clip.frames, tmp_path / f"{name}.mp4")
    given = [{"frame": t, "box": list(box), "label": f"shape{i}"}
             for t in (0, 4) for i, box in enumerate(true_boxes(CLIPS["good"].masks[t]))]
    lines = [
        {"video_id": "everything", "uri": "good.mp4", "mode": "everything"},
        {"video_id": "given", "uri": "good.mp4", "mode": "detections", "detections": given},
        {"video_id": "detected", "uri": "good.mp4", "mode": "detections"},
        {"video_id": "raises", "uri": "raises.mp4", "mode": "detections"},
        {"video_id": "malformed", "uri": "malformed.mp4", "mode": "detections"},
        {"video_id": "nothing", "uri": "nothing.mp4", "mode": "detections"},
        {"video_id": "prompted", "uri": "good.mp4", "prompts": [{"obj_id": 7, "frame": 0, "box": given[0]["box"],
                                                                 "label": "boxed"}]},
    ]
    (tmp_path / "videos.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump(
        {**PIPELINE, "auto": {**PIPELINE["auto"], "detector": "tests.support.detectors:KnownShapes"}}))
    command = [sys.executable, "-m", "pipelines.cli", "autolabel", str(tmp_path / "videos.jsonl"),
               "--config", str(tmp_path / "pipeline.yaml"), "--store", str(tmp_path / "store")]
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert first.returncode == 1, first.stdout + first.stderr  # two videos failed
    assert "5 done, 2 failed, 0 skipped" in first.stdout, first.stdout
    assert "failed raises: frame 0: the detector KnownShapes raised RuntimeError: the detector's server is down" \
        in first.stdout
    assert "failed malformed: frame 0: the detector KnownShapes returned boxes that are not N x 4" in first.stdout
    assert "done nothing: no objects found" in first.stdout

    store = MaskletStore(tmp_path / "store")
    assert store.done() == {"everything", "given", "detected", "nothing", "prompted"}
    assert store.table().num_rows > 0 and not list(store.rows("nothing"))
    manifest = store.manifest()
    assert {manifest[v]["mode"] for v in ("given", "detected")} == {"detections"}
    assert manifest["everything"]["num_frames"] == FRAMES
    for video_id in ("given", "detected"):  # a track per shape, with the shape's class name, over the clip
        rows = list(store.rows(video_id))
        assert {(r.obj_id, r.label) for r in rows} == {(1, "shape0"), (2, "shape1")}
        tracks = store.video_masks(video_id)
        matching = match_tracks(visible(CLIPS["good"].masks), tracks)
        assert (matching.recall, matching.duplicates) == (1.0, ()), matching.report()
        assert {m.gt_id: m.track_id for m in matching.objects} == {0: 1, 1: 2}
    everything = list(store.rows("everything"))
    assert everything and all(r.label is None for r in everything)
    assert len({(r.obj_id, r.frame_idx) for r in everything}) == len(everything)  # one mask per track and frame
    assert match_tracks(visible(CLIPS["good"].masks), store.video_masks("everything")).found >= 1
    assert {(r.obj_id, r.label) for r in store.rows("prompted")} == {(7, "boxed")}

    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert "0 done, 2 failed, 5 skipped" in again.stdout, again.stdout + again.stderr


def test_on_ray_every_object_on_screen_long_enough_gets_one_track_followed_both_ways(tmp_path):
    """The same command on two replicas, with exact tracking plugged in by the YAML (`model.tracker`), so what
    is checked is the finding and the plumbing: generated clips whose objects walk in after frame 0, leave and
    come back; each object visible on at least a keyframe interval of frames gets exactly one track, the same
    id on every frame, its mask on every frame before its keyframe too; and boxes with class names, some
    missing, link into one labelled track per object."""
    from tests.support.trackers import late_entry_clip

    seeds, every = (30000106, 30000112, 30000119), 4
    clips = {f"late-{seed}": late_entry_clip(f"late-{seed}.mp4") for seed in seeds}
    lines = []
    for name, clip in clips.items():
        write_mp4(clip.frames, tmp_path / f"{name}.mp4")
        lines.append({"video_id": name, "uri": f"{name}.mp4", "mode": "everything"})
    boxes = [{"frame": t, "box": list(true_boxes([mask])[0]), "label": f"kind{i}"} for t in range(0, 16, every)
             for i, mask in enumerate(clips["late-30000106"].masks[t]) if mask.any() and (t // every + i) % 3 != 1]
    lines.append({"video_id": "boxes", "uri": "late-30000106.mp4", "mode": "detections", "detections": boxes})
    (tmp_path / "videos.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({
        "model": {"tracker": "tests.support.trackers:ground_truth_discovery_tracker"},
        "pool": {"num_replicas": 2, "num_cpus": 1}, "auto": {"every": every, "tracks": {"min_frames": 2}}}))
    command = [sys.executable, "-m", "pipelines.cli", "autolabel", str(tmp_path / "videos.jsonl"),
               "--config", str(tmp_path / "pipeline.yaml"), "--store", str(tmp_path / "store")]
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and "4 done, 0 failed" in run.stdout, run.stdout + run.stderr

    store = MaskletStore(tmp_path / "store")
    for video_id in (*clips, "boxes"):
        clip = clips[video_id if video_id != "boxes" else "late-30000106"]
        truth = visible(clip.masks)
        tracks = store.video_masks(video_id)
        matching = match_tracks(truth, tracks, min_frames=every)
        assert (matching.recall, matching.duplicates, matching.spurious) == (1.0, (), ()), matching.report()
        for m in matching.objects:
            if m.counted:  # the whole object on every frame, with one id
                for t in range(clip.num_frames):
                    got = tracks.get(t, {}).get(m.track_id, np.zeros_like(clip.masks[t, m.gt_id]))
                    assert np.array_equal(got, clip.masks[t, m.gt_id]), (video_id, m.gt_id, t)
    labels = {(r.obj_id, r.label) for r in store.rows("boxes")}
    assert {label for _, label in labels} == {f"kind{i}" for i in range(clips["late-30000106"].masks.shape[1])}
    assert len(labels) == len({obj for obj, _ in labels})  # one class name per track
