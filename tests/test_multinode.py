"""The scheduler on a multi-node cluster faked on this machine (`ray.cluster_utils.Cluster`): replicas
on different nodes share the videos, and a node lost mid-job costs no row."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import psutil
import pytest
import ray
from ray.cluster_utils import Cluster

from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import Prompt, VideoJob
from sam2_ray.replica import ModelSpec
from sam2_ray.scheduler import PoolConfig, Scheduler
from tests.support.clips import make_clip, write_mp4
from tests.support.models import tiny_config

SPEC = ModelSpec(config=tiny_config())
# One fake GPU per worker node and one per replica: no two replicas share a node. The head has no
# GPU, so no replica lands there.
POOL = PoolConfig(num_replicas=2, num_gpus=1, num_cpus=0, max_attempts=5)
# Dead nodes are noticed after ~3 s instead of Ray's default ~30 s.
FAST_HEALTH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000,
               "health_check_failure_threshold": 3}


@pytest.fixture(scope="module")
def cluster():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "num_gpus": 0, "include_dashboard": False, "object_store_memory": 128 * 2**20,
        "_system_config": FAST_HEALTH})
    # Three workers for two replicas: a replica whose node is removed can restart on the spare one.
    for _ in range(3):
        cluster.add_node(num_cpus=1, num_gpus=1, object_store_memory=96 * 2**20)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def _jobs(folder, lengths) -> tuple[list[VideoJob], dict[str, int]]:
    jobs, frames = [], {}
    for i, n in enumerate(lengths):
        clip = make_clip(n, 40, 56, num_objects=2, seed=200 + i)
        video = write_mp4(clip.frames, folder / f"v{i}.mp4")
        jobs.append(VideoJob(f"v{i}", str(video), (Prompt(1, 0, box=(2, 2, 30, 30)),
                                                    Prompt(2, 1, points=[(40, 20)], labels=[1]))))
        frames[f"v{i}"] = n
    return jobs, frames


def _assert_every_row_once(store: MaskletStore, frames: dict[str, int]) -> None:
    for video_id, n in frames.items():
        keys = Counter((r.obj_id, r.frame_idx) for r in store.rows(video_id))
        assert sorted(keys) == [(o, f) for o in (1, 2) for f in range(n)] and set(keys.values()) == {1}, video_id


def test_videos_spread_over_the_worker_nodes(cluster, tmp_path):
    jobs, frames = _jobs(tmp_path, (12, 10, 9, 8))
    store = MaskletStore(tmp_path / "store")
    scheduler = Scheduler(SPEC, store, POOL)
    try:
        nodes = {i["node_id"] for i in scheduler.replica_info()}
        summary = scheduler.run(jobs, progress=False)
    finally:
        scheduler.shutdown()
    head = cluster.head_node.node_id
    assert len(nodes) == 2 and head not in nodes
    assert sorted(o.video_id for o in summary.of("done")) == sorted(frames), summary.report()
    assert {o.node_id for o in summary.outcomes} == nodes  # both nodes did some of the work
    _assert_every_row_once(store, frames)


def _writer_pid(pids, tmp_name: str) -> int | None:
    """The replica process that has this temporary store file open."""
    for pid in pids:
        if any(f.path.endswith(tmp_name) for f in psutil.Process(pid).open_files()):
            return pid
    return None


def _when_every_replica_answers(scheduler, timeout_s: float = 120.0) -> list[dict]:
    """The job can end while Ray still restarts the lost replica on the spare node (slow on a loaded machine)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return scheduler.replica_info()
        except ray.exceptions.RayActorError:  # ActorUnavailableError: restarting
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_node_removed_mid_job_loses_no_row(cluster, tmp_path):
    """Once a video is done, the node of the replica that has just started the next one disappears:
    that video runs again elsewhere (the replica restarts on the spare node), its partial file is
    removed, and the job completes with every row exactly once."""
    jobs, frames = _jobs(tmp_path, (30, 28, 26, 24, 22, 20))
    store = MaskletStore(tmp_path / "store")
    scheduler = Scheduler(SPEC, store, POOL)
    removed: list[tuple[str, str]] = []  # (node, temporary file of the video it was writing)
    stop = threading.Event()
    try:
        node_of = {i["pid"]: i["node_id"] for i in scheduler.replica_info()}

        def remove_a_busy_node():
            # Paced by progress, not the clock: a temporary file that appears after a video is
            # done belongs to a video just started, so its node goes while that video is unfinished.
            seen: set[str] = set()
            while not stop.wait(0.02):
                tmp = {p.name for p in (store.root / "tmp").glob("*.parquet")}
                just_started = sorted(tmp - seen) if store.done() else []
                seen |= tmp
                for name in just_started:
                    pid = _writer_pid(node_of, name)
                    if pid is not None:
                        cluster.remove_node(next(n for n in cluster.worker_nodes if n.node_id == node_of[pid]))
                        removed.append((node_of[pid], name))
                        return

        thread = threading.Thread(target=remove_a_busy_node)
        thread.start()
        try:
            summary = scheduler.run(jobs, progress=False)
        finally:
            stop.set()
            thread.join()
        replica_nodes = {i["node_id"] for i in _when_every_replica_answers(scheduler)}
    finally:
        scheduler.shutdown()
    assert removed, "a node must be removed while the job runs"
    node, tmp_name = removed[0]
    assert not (store.root / "tmp" / tmp_name).exists()  # its video was never finished there: discarded
    assert list((store.root / "tmp").iterdir()) == []
    assert len(replica_nodes) == 2 and node not in replica_nodes  # the lost replica lives on the spare node
    assert sorted(o.video_id for o in summary.of("done")) == sorted(frames), summary.report()
    _assert_every_row_once(store, frames)
