"""Many videos over a pool of replicas: longest first, one video in flight per replica, a video
re-run elsewhere when its replica dies (its partial output never became a file), and a summary.

A dead attempt's temporary file is removed as soon as the scheduler learns of the death, and every
run starts and ends by removing those of any writer that died; the store tells them from live
writers' files by their locks (see masklet_store), so runs sharing a store leave each other's alone."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from tqdm import tqdm

from sam2.frames import open_frames

from .labeler import VideoOutcome
from .masklet_store import MaskletStore
from .records import VideoJob
from .replica import ModelSpec, SAM2Replica

# Relative cost of a frame: the image encoder once, memory attention per object (perf_anchors: a
# tracked object costs about twice the t encoder).
ENCODER_COST, OBJECT_COST = 1.0, 2.0


def estimated_cost(job: VideoJob, num_frames: int | None) -> float:
    return (num_frames or 0) * (ENCODER_COST + OBJECT_COST * len(job.obj_ids))


def video_length(job: VideoJob) -> int | None:
    """Frame count, or None when the media cannot be read (the replica then reports why)."""
    try:
        return open_frames(job.uri, name=job.video_id).num_frames
    except (ValueError, OSError):
        return None


@dataclass
class JobSummary:
    outcomes: list[VideoOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def of(self, status: str) -> list[VideoOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def frames(self) -> int:
        return sum(o.frames for o in self.outcomes)

    def report(self) -> str:
        lines = [f"{len(self.of('done'))} done, {len(self.of('failed'))} failed, "
                 f"{len(self.of('skipped'))} skipped (already done); {self.frames} frames in {self.seconds:.1f} s"]
        lines += [f"  failed {o.video_id}: {o.reason}" for o in self.of("failed")]
        return "\n".join(lines)


@dataclass(frozen=True)
class PoolConfig:
    num_replicas: int = 1
    num_gpus: float = 0.0  # per replica; fractions pack several replicas on one GPU
    num_cpus: float = 1.0  # per replica (Ray holds it for the actor's life)
    max_attempts: int = 3  # runs of one video before it counts as failed (replica deaths)
    recovery_s: float = 600.0  # a dead replica that has not answered for this long is given up


class Scheduler:
    def __init__(self, spec: ModelSpec, store: MaskletStore, pool: PoolConfig = PoolConfig()) -> None:
        self.spec, self.store, self.pool = spec, store, pool
        actor = ray.remote(SAM2Replica).options(num_gpus=pool.num_gpus, num_cpus=pool.num_cpus,
                                                max_restarts=-1, max_task_retries=0)
        self.replicas = [actor.remote(spec, str(store.root)) for _ in range(pool.num_replicas)]

    def run(self, jobs: list[VideoJob], progress: bool = True) -> JobSummary:
        try:
            self.replica_info()
        except RayActorError as error:  # e.g. the model cannot be built on the workers
            raise RuntimeError(f"the model replicas could not start: {error}") from error
        start = time.perf_counter()
        summary = JobSummary()
        self.store.discard_partial()
        done = self.store.done()
        todo = []
        for job in jobs:
            if job.video_id in done:
                summary.outcomes.append(VideoOutcome(job.video_id, "skipped", reason="already in the store"))
            else:
                todo.append(job)
        queue = deque(sorted(todo, key=lambda j: -estimated_cost(j, video_length(j))))
        attempts = {job.video_id: 0 for job in todo}
        bar = tqdm(total=len(todo), unit="video", disable=not progress)
        try:
            self._drive(queue, attempts, summary, bar)
        finally:
            bar.close()
            self.store.discard_partial()  # also after an interrupted run (live replicas' files stay)
        summary.seconds = time.perf_counter() - start
        return summary

    def _drive(self, queue: deque[VideoJob], attempts: dict[str, int], summary: JobSummary, bar: tqdm) -> None:
        """Hand out the queue until every video is done or failed (retrying those whose replica died)."""
        running: dict[ray.ObjectRef, tuple[int, VideoJob]] = {}
        probes: dict[ray.ObjectRef, int] = {}  # replicas recovering from a death: ready once they answer
        waiting: dict[int, float] = {}  # replica -> when to probe it next
        lost_since: dict[int, float] = {}  # replica -> when it died
        idle = list(range(len(self.replicas)))
        while queue or running:
            now = time.monotonic()
            if queue and not running and not idle and all(now - t > self.pool.recovery_s for t in lost_since.values()):
                for job in queue:
                    summary.outcomes.append(VideoOutcome(job.video_id, "failed", reason="no replica recovered"))
                break
            for replica, at in list(waiting.items()):
                if at <= now:
                    del waiting[replica]
                    probes[self.replicas[replica].info.remote()] = replica
            while queue and idle:
                replica, job = idle.pop(), queue.popleft()
                attempts[job.video_id] += 1
                running[self.replicas[replica].label.remote(job)] = (replica, job)
            ready, _ = ray.wait(list(running) + list(probes), num_returns=1, timeout=0.5)
            for ref in ready:
                if ref in probes:
                    replica = probes.pop(ref)
                    try:
                        ray.get(ref, timeout=10)
                        idle.append(replica)
                        lost_since.pop(replica, None)
                    except (RayActorError, GetTimeoutError):
                        if time.monotonic() - lost_since[replica] < self.pool.recovery_s:
                            waiting[replica] = time.monotonic() + 0.5
                    continue
                replica, job = running.pop(ref)
                try:
                    outcome = ray.get(ref, timeout=60)
                    idle.append(replica)
                except (RayActorError, GetTimeoutError) as error:
                    self.store.discard_partial()  # the dead attempt's rows: its lock died with its process
                    waiting[replica] = time.monotonic()  # Ray restarts it; use it again once it answers
                    lost_since.setdefault(replica, time.monotonic())
                    if attempts[job.video_id] < self.pool.max_attempts:
                        queue.appendleft(job)  # the video runs again from scratch; nothing partial was kept
                        continue
                    outcome = VideoOutcome(job.video_id, "failed",
                                           reason=f"replica died {attempts[job.video_id]} times: {error}")
                summary.outcomes.append(outcome)
                bar.update(1)
                bar.set_postfix(frames=sum(o.frames for o in summary.outcomes))

    def replica_info(self) -> list[dict]:
        return ray.get([r.info.remote() for r in self.replicas], timeout=120)

    def shutdown(self) -> None:
        for replica in self.replicas:
            ray.kill(replica)
