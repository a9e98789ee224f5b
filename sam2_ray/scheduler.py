"""Many videos over a pool of `SAM2Replica` actors: longest first, one video in flight per replica, a video
re-run elsewhere when its replica dies (its partial output never became a file), and a summary.

The decisions (what runs where, retries, when to give up on a dead replica) are `dispatch.Dispatch`, a plain
object; this module is its Ray shell: it orders the jobs by estimated cost, starts the runs and the probes of
dead replicas, and tells Dispatch what each one answered.

A dead attempt's temporary file is removed as soon as the scheduler learns of the death, and every
run starts and ends by removing those of any writer that died; the store tells them from live
writers' files by their locks (see masklet_store), so runs sharing a store leave each other's alone."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from tqdm import tqdm

from sam2.frames import open_frames

from .dispatch import Dispatch
from .labeler import VideoOutcome
from .masklet_store import MaskletStore
from .records import VideoJob
from .replica import ModelSpec, SAM2Replica

# Relative cost of a frame: the image encoder once, memory attention per object (at 1024 px a tracked
# object's memory attention counts about twice the FLOPs of the t image encoder).
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
        lines += [f"  done {o.video_id}: {o.reason}" for o in self.of("done") if o.reason]
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
        dispatch = Dispatch(sorted(todo, key=lambda j: -estimated_cost(j, video_length(j))), len(self.replicas),
                            self.pool.max_attempts, self.pool.recovery_s)
        bar = tqdm(total=len(todo), unit="video", disable=not progress)
        try:
            self._drive(dispatch, bar)
        finally:
            bar.close()
            self.store.discard_partial()  # also after an interrupted run (live replicas' files stay)
        summary.outcomes += dispatch.outcomes
        summary.seconds = time.perf_counter() - start
        return summary

    def _drive(self, dispatch: Dispatch, bar: tqdm) -> None:
        """The Ray side of `dispatch`: start what it assigns, and tell it what each replica answered."""
        running: dict[ray.ObjectRef, int] = {}  # a video's run -> its replica
        probes: dict[ray.ObjectRef, int] = {}  # "are you back?" -> the recovering replica
        while dispatch.active:
            now = time.monotonic()
            if dispatch.give_up(now):
                break
            for replica in dispatch.probes_due(now):
                probes[self.replicas[replica].info.remote()] = replica
            for replica, job in dispatch.assign():
                running[self.replicas[replica].label.remote(job)] = replica
            ready, _ = ray.wait(list(running) + list(probes), num_returns=1, timeout=0.5)
            for ref in ready:
                if ref in probes:
                    replica = probes.pop(ref)
                    try:
                        ray.get(ref, timeout=10)
                        dispatch.recovered(replica)
                    except (RayActorError, GetTimeoutError):
                        dispatch.probe_failed(replica, time.monotonic())
                    continue
                replica = running.pop(ref)
                try:
                    dispatch.finished(replica, ray.get(ref, timeout=60))
                except (RayActorError, GetTimeoutError) as error:
                    self.store.discard_partial()  # the dead attempt's rows: its lock died with its process
                    if dispatch.lost(replica, str(error), time.monotonic()) is None:
                        continue  # Ray restarts the replica; the video runs again
                bar.update(1)
                bar.set_postfix(frames=sum(o.frames for o in dispatch.outcomes))

    def replica_info(self) -> list[dict]:
        return ray.get([r.info.remote() for r in self.replicas], timeout=120)

    def shutdown(self) -> None:
        for replica in self.replicas:
            ray.kill(replica)
