"""`sam2-ray autolabel` as a user runs it: manifest + pipeline YAML -> masklet store, local Ray."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from pipelines.autolabel import autolabel
from pipelines.errors import InvalidInput
from pipelines.manifest import read_manifest
from pipelines.settings import DEFAULT_CONFIG, load_settings
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


def test_bad_render_options_are_input_errors(tmp_path):
    (tmp_path / "videos.jsonl").write_text("")
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({"render": {"outputs": ["sheet"], "alpha": 2}}))
    with pytest.raises(InvalidInput, match="render: alpha must be between 0 and 1"):
        autolabel(tmp_path / "videos.jsonl", tmp_path / "pipeline.yaml")
    with pytest.raises(InvalidInput, match=r"--render: unknown render outputs \['gif'\]"):
        autolabel(tmp_path / "videos.jsonl", render="overlay,gif")


def test_the_default_config_runs_the_bundled_model_and_a_missing_checkpoint_is_named(tmp_path):
    model = load_settings(DEFAULT_CONFIG).model
    assert (model.config, model.checkpoint) == ("sam2.1_hiera_mini", "bundled")
    for checkpoint, words in (("bundled", "no bundled weights for sam2.1_hiera_t"),
                              (str(tmp_path / "gone.pt"), "checkpoint not found")):
        (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({"model": {"config": "sam2.1_hiera_t",
                                                                          "checkpoint": checkpoint}}))
        with pytest.raises(InvalidInput, match=words):
            load_settings(tmp_path / "pipeline.yaml")


def test_autolabel_command_labels_the_good_videos_and_reports_the_bad(tmp_path):
    model_yaml = write_config_yaml(tiny_config(), tmp_path / "tiny.yaml")
    assert load_config(model_yaml) == tiny_config()
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({
        "model": {"config": str(model_yaml)}, "pool": {"num_replicas": 1, "num_cpus": 1}, "store": "unused"}))
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
               "--config", str(tmp_path / "pipeline.yaml"), "--store", str(tmp_path / "store"),
               "--render", "overlay,sheet"]
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert first.returncode == 1, first.stderr  # some videos failed
    assert "2 done, 2 failed, 0 skipped" in first.stdout
    assert "failed inverted:" in first.stdout and "failed gone:" in first.stdout
    assert "renders: 4 files written, 0 failed" in first.stdout
    store = MaskletStore(tmp_path / "store")
    assert store.done() == {"a", "b"} and store.table().num_rows == 2 * 8 + 2 * 5
    renders = tmp_path / "store" / "renders"
    assert sorted(p.name for p in renders.iterdir()) == ["a.mp4", "a.png", "b.mp4", "b.png"]
    rendered_a = renders.joinpath("a.mp4").stat().st_mtime_ns
    for path in (tmp_path / "b.mp4", renders / "b.mp4", renders / "b.png"):
        path.unlink()
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert "0 done, 2 failed, 2 skipped" in again.stdout
    # a's renders are up to date; b's video is gone, so its render fails with a reason and the job ends
    assert "renders: 0 files written, 1 failed" in again.stdout
    assert "render failed b:" in again.stdout and "no such video file" in again.stdout
    assert renders.joinpath("a.mp4").stat().st_mtime_ns == rendered_a


def _store_files(store) -> dict[str, tuple[int, int, bytes]]:
    """Finished video files: name -> (inode, mtime_ns, content)."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in (store / "videos").iterdir()}


def test_driver_killed_mid_job_reruns_only_the_unfinished_videos(tmp_path):
    """A crash takes down the `sam2-ray autolabel` driver and its replicas (SIGKILL) while some videos
    are finished and another is half-written: the same command again labels only the rest, leaves
    the finished files alone and removes the half-written one."""
    model_yaml = write_config_yaml(tiny_config(), tmp_path / "tiny.yaml")
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({
        "model": {"config": str(model_yaml)}, "pool": {"num_replicas": 2, "num_cpus": 1}}))
    lengths = {f"v{i}": n for i, n in enumerate((30, 26, 22, 18, 14))}
    lines = []
    for name, n in lengths.items():
        write_mp4(make_clip(n, 40, 56, num_objects=1, seed=n).frames, tmp_path / f"{name}.mp4")
        lines.append({"video_id": name, "uri": f"{name}.mp4",
                      "prompts": [{"obj_id": 1, "frame": 0, "box": [2, 2, 30, 30]}]})
    (tmp_path / "videos.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    store = tmp_path / "store"
    command = [str(Path(sys.executable).parent / "sam2-ray"), "autolabel", str(tmp_path / "videos.jsonl"),
               "--config", str(tmp_path / "pipeline.yaml"), "--store", str(store)]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    with open(tmp_path / "first.log", "w") as log:
        driver = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log, start_new_session=True)
    # Paced by progress, not the clock: the crash comes once a video is finished and a replica has
    # just started another (a temporary file that appeared after the first finished file).
    deadline, seen = time.monotonic() + 300, set()
    while True:
        assert driver.poll() is None, f"the job ended before the crash: {(tmp_path / 'first.log').read_text()}"
        assert time.monotonic() < deadline, "no video finished in time"
        tmp = set((store / "tmp").glob("*.parquet")) if (store / "tmp").is_dir() else set()
        if (store / "videos").is_dir() and any((store / "videos").iterdir()) and tmp - seen:
            break
        seen |= tmp
        time.sleep(0.02)
    processes = [psutil.Process(driver.pid), *psutil.Process(driver.pid).children(recursive=True)]
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
    for process in processes:  # the replicas run in process groups of their own
        with contextlib.suppress(psutil.NoSuchProcess):  # already gone with the group
            process.kill()
    driver.wait()
    _, alive = psutil.wait_procs(processes, timeout=30)
    assert not alive, f"processes left behind by the killed job: {[p.cmdline() for p in alive]}"
    before = _store_files(store)
    stale = list((store / "tmp").glob("*.parquet"))
    assert stale and 1 <= len(before) < len(lengths)

    again = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{len(lengths) - len(before)} done, 0 failed, {len(before)} skipped" in again.stdout
    after = _store_files(store)
    assert {name: after[name] for name in before} == before  # finished files untouched
    assert not any(p.exists() for p in stale)
    labelled = MaskletStore(store)
    assert labelled.done() == set(lengths)
    for name, n in lengths.items():
        assert sorted((r.obj_id, r.frame_idx) for r in labelled.rows(name)) == [(1, f) for f in range(n)]
