"""`sam2-ray autolabel` as a user runs it: manifest + pipeline YAML -> masklet store, local Ray."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import yaml

from pipelines.errors import InvalidInput
from pipelines.manifest import read_manifest
from sam2.config import load_config
from sam2_ray.masklet_store import MaskletStore
from tests.support.clips import make_clip, write_mp4
from tests.support.models import tiny_config, write_config_yaml
from tests.support.paths import REPO


def test_csv_manifest_groups_prompts_by_video_and_rejects_bad_ones(tmp_path):
    with open(tmp_path / "m.csv", "w", newline="") as f:
        csv.writer(f).writerows([
            ["video_id", "uri", "obj_id", "frame", "points", "labels", "box", "label"],
            ["a", "a.mp4", 1, 0, "10,20;30,40", "1;0", "", "car"],
            ["a", "a.mp4", 2, 5, "", "", "1,2,30,40", "person"],
            ["b", "b.mp4", 1, 0, "", "", "9,9,3,3", ""],
        ])
    jobs, rejected = read_manifest(tmp_path / "m.csv")
    assert [j.video_id for j in jobs] == ["a"] and jobs[0].uri == str(tmp_path / "a.mp4")
    assert jobs[0].prompts[0].points == ((10.0, 20.0), (30.0, 40.0)) and jobs[0].prompts[1].label == "person"
    assert [(o.video_id, o.status) for o in rejected] == [("b", "failed")] and "x1 > x0" in rejected[0].reason
    with pytest.raises(InvalidInput, match="row 2: needs integer obj_id"):
        (tmp_path / "bad.csv").write_text("video_id,uri,obj_id\nv,v.mp4,x\n")
        read_manifest(tmp_path / "bad.csv")


def test_autolabel_command_labels_the_good_videos_and_reports_the_bad(tmp_path):
    model_yaml = write_config_yaml(tiny_config(), tmp_path / "tiny.yaml")
    assert load_config(model_yaml) == tiny_config()
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({
        "model": {"config": str(model_yaml)}, "pool": {"num_replicas": 2, "num_cpus": 1}, "store": "unused"}))
    lines = []
    for name, n in (("a", 8), ("b", 5)):
        write_mp4(make_clip(n, 40, 56, num_objects=1, seed=n).frames, tmp_path / f"{name}.mp4")
        lines.append({"video_id": name, "uri": f"{name}.mp4",
                      "prompts": [{"obj_id": 1, "frame": 1, "box": [2, 2, 30, 30]},
                                  {"obj_id": 2, "frame": 0, "points": [[40, 20]], "labels": [1]}]})
    lines.append({"video_id": "inverted", "uri": "a.mp4", "prompts": [{"obj_id": 1, "frame": 0, "box": [9, 9, 1, 1]}]})
    lines.append({"video_id": "gone", "uri": "gone.mp4", "prompts": [{"obj_id": 1, "frame": 0, "box": [1, 1, 9, 9]}]})
    (tmp_path / "videos.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    command = [sys.executable, "-m", "pipelines.cli", "autolabel", str(tmp_path / "videos.jsonl"),
               "--config", str(tmp_path / "pipeline.yaml"), "--store", str(tmp_path / "store")]
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert first.returncode == 1, first.stderr  # some videos failed
    assert "2 done, 2 failed, 0 skipped" in first.stdout
    assert "failed inverted:" in first.stdout and "failed gone:" in first.stdout
    store = MaskletStore(tmp_path / "store")
    assert store.done() == {"a", "b"} and store.table().num_rows == 2 * 8 + 2 * 5
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert "0 done, 2 failed, 2 skipped" in again.stdout
