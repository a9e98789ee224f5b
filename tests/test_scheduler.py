"""Replicas and the scheduler on a real local Ray with fake GPUs."""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest

from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import Prompt, VideoJob
from sam2_ray.replica import ModelSpec
from sam2_ray.scheduler import PoolConfig, Scheduler
from tests.support.clips import make_clip, write_mp4
from tests.support.models import tiny_config
from tests.support.ray_local import local_ray


@pytest.fixture(scope="module")
def ray_cluster():
    with local_ray(num_cpus=4, num_gpus=4):
        yield


SPEC = ModelSpec(config=tiny_config())


def test_each_replica_gets_its_own_fake_gpu(ray_cluster, tmp_path):
    scheduler = Scheduler(SPEC, MaskletStore(tmp_path), PoolConfig(num_replicas=4, num_gpus=1, num_cpus=0.5))
    try:
        info = scheduler.replica_info()
    finally:
        scheduler.shutdown()
    assert sorted(i["gpu_ids"][0] for i in info) == ["0", "1", "2", "3"]
    assert all(i["cuda_visible_devices"] == i["gpu_ids"][0] and i["device"] == "cpu" for i in info)
    assert len({i["pid"] for i in info}) == 4


def test_fractional_gpus_pack_two_replicas_per_gpu(ray_cluster, tmp_path):
    scheduler = Scheduler(SPEC, MaskletStore(tmp_path), PoolConfig(num_replicas=4, num_gpus=0.5, num_cpus=0.5))
    try:
        info = scheduler.replica_info()
    finally:
        scheduler.shutdown()
    assert sorted(Counter(i["gpu_ids"][0] for i in info).values()) == [2, 2]


def test_bad_videos_fail_with_reasons_and_everything_else_completes(ray_cluster, tmp_path):
    clips = {name: make_clip(n, 40, 56, num_objects=2, seed=n) for name, n in (("a", 6), ("b", 9), ("c", 4))}
    jobs = []
    for name, clip in clips.items():
        video = write_mp4(clip.frames, tmp_path / f"{name}.mp4")
        ys, xs = np.nonzero(clip.masks[0, 0])
        jobs.append(VideoJob(name, str(video), (Prompt(1, 0, points=[(xs.mean(), ys.mean())], labels=[1]),
                                                Prompt(2, 1, box=(2, 2, 30, 30)))))
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00" * 4096)
    jobs += [
        VideoJob("corrupt", str(tmp_path / "corrupt.mp4"), (Prompt(1, 0, box=(1, 1, 5, 5)),)),
        VideoJob("missing", str(tmp_path / "missing.mp4"), (Prompt(1, 0, box=(1, 1, 5, 5)),)),
        VideoJob("late", str(tmp_path / "a.mp4"), (Prompt(1, 50, box=(1, 1, 5, 5)),)),
    ]
    store = MaskletStore(tmp_path / "store")
    scheduler = Scheduler(SPEC, store, PoolConfig(num_replicas=2, num_gpus=1, num_cpus=1))
    try:
        summary = scheduler.run(jobs, progress=False)
        again = scheduler.run(jobs, progress=False)
    finally:
        scheduler.shutdown()
    assert sorted(o.video_id for o in summary.of("done")) == ["a", "b", "c"]
    reasons = {o.video_id: o.reason for o in summary.of("failed")}
    assert set(reasons) == {"corrupt", "missing", "late"}
    assert "cannot be opened" in reasons["corrupt"] and "no such video" in reasons["missing"]
    assert "the video has 6 frames" in reasons["late"]
    for name, clip in clips.items():
        keys = sorted((r.obj_id, r.frame_idx) for r in store.rows(name))
        assert keys == [(o, f) for o in (1, 2) for f in range(clip.num_frames)]
    assert sorted(o.video_id for o in again.of("skipped")) == ["a", "b", "c"]
    assert "3 done, 3 failed, 0 skipped" in summary.report()


def _replica_pids() -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"]) if "SAM2Replica" in " ".join(p.info["cmdline"] or [])]


def test_replicas_killed_mid_video_lose_no_row(ray_cluster, tmp_path):
    """SIGKILL replicas at random moments while videos are still unfinished: every video still completes,
    every (video, object, frame) row exists exactly once, a killed attempt's temporary file is removed as
    soon as the scheduler sees the death, and the run ends with only finished files in the store."""
    import random
    import signal
    import threading
    import time

    import psutil

    jobs, lengths = [], {}
    for i, n in enumerate((40, 30, 45, 35, 50, 25)):
        clip = make_clip(n, 40, 56, num_objects=1, seed=100 + i)
        video = write_mp4(clip.frames, tmp_path / f"v{i}.mp4")
        jobs.append(VideoJob(f"v{i}", str(video), (Prompt(1, 0, box=(2, 2, 30, 30)),)))
        lengths[f"v{i}"] = n
    store = MaskletStore(tmp_path / "store")
    scheduler = Scheduler(SPEC, store, PoolConfig(num_replicas=2, num_gpus=1, num_cpus=1, max_attempts=10))
    scheduler.replica_info()  # replicas up before the clock starts
    kills: list[tuple[int, int]] = []  # (pid, videos done when it was killed)
    killed_files: set[str] = set()  # temporary files the killed replicas were writing
    tmp = store.root / "tmp"
    stop = threading.Event()

    def killer():
        # Kills are paced by what is left to do, not by the clock, so a fast machine still sees them
        # land mid-job: a replica that has lived a moment is killed while at least two videos remain.
        rng = random.Random(0)
        while len(kills) < 3 and not stop.wait(rng.uniform(0.3, 0.8)):
            finished = len(store.done())
            if finished > len(jobs) - 2:
                return
            now = time.time()
            pids = [pid for pid in _replica_pids() if now - psutil.Process(pid).create_time() > 0.3]
            if pids:
                pid = rng.choice(pids)
                try:
                    killed_files.update(f.path for f in psutil.Process(pid).open_files() if f.path.startswith(str(tmp)))
                except psutil.NoSuchProcess:
                    continue
                os.kill(pid, signal.SIGKILL)
                kills.append((pid, finished))

    sweeps: list[set[str]] = []  # the temporary files each of the scheduler's sweeps removed

    def sweep(discard=store.discard_partial):
        before = {str(p) for p in tmp.iterdir()}
        removed = discard()
        sweeps.append(before - {str(p) for p in tmp.iterdir()})
        return removed

    store.discard_partial = sweep
    thread = threading.Thread(target=killer)
    thread.start()
    try:
        summary = scheduler.run(jobs, progress=False)
    finally:
        stop.set()
        thread.join()
        scheduler.shutdown()
    assert len(kills) >= 2, f"the test must actually kill replicas mid-job: {kills}"
    assert sorted(o.video_id for o in summary.of("done")) == sorted(lengths), summary.report()
    for video_id, n in lengths.items():
        keys = [(r.obj_id, r.frame_idx) for r in store.rows(video_id)]
        assert sorted(keys) == [(1, f) for f in range(n)]
    # The first and last sweeps open and close the run; those between follow a replica's death.
    assert killed_files & set().union(*sweeps[1:-1]), f"no killed attempt's file was removed: {killed_files} {sweeps}"
    assert list(tmp.iterdir()) == [] and sorted(p.name for p in (store.root / "videos").iterdir()) == sorted(
        f"{v}.parquet" for v in lengths)
