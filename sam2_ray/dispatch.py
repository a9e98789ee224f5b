"""Which video runs where, and what happens when a replica dies: the scheduler's decisions as a plain
object, so that every retry and recovery path is tested without starting Ray.

A video is pending, running (on one replica), then done or failed. When its replica dies it is lost:
it goes back to the front of the queue to run again from scratch (retried), or fails once it has
used its attempts. A dead replica is probed until it answers (Ray restarts it) or until it has been
gone for `recovery_s`; when every replica is gone that long, the videos still pending fail.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .labeler import VideoOutcome
from .records import VideoJob

PROBE_INTERVAL_S = 0.5


@dataclass
class VideoState:
    job: VideoJob
    state: str = "pending"  # pending, running, done or failed
    attempts: int = 0
    retried: int = 0  # runs lost with their replica and started again
    replica: int | None = None


@dataclass
class Dispatch:
    jobs: list[VideoJob]  # in the order to run them (the scheduler sorts longest first)
    num_replicas: int
    max_attempts: int = 3
    recovery_s: float = 600.0
    outcomes: list[VideoOutcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.videos = {job.video_id: VideoState(job) for job in self.jobs}
        self._queue = deque(job.video_id for job in self.jobs)
        self._idle = list(range(self.num_replicas))
        self._running: dict[int, str] = {}  # replica -> video_id
        self._lost_since: dict[int, float] = {}  # replica -> when it died
        self._probe_at: dict[int, float] = {}  # lost replica -> when to ask it again

    @property
    def active(self) -> bool:
        """Work is left: a video is pending or running."""
        return bool(self._queue or self._running)

    def state(self, video_id: str) -> str:
        return self.videos[video_id].state

    def assign(self) -> list[tuple[int, VideoJob]]:
        """Pair idle replicas with pending videos (front of the queue first); each pair is now running."""
        pairs = []
        while self._queue and self._idle:
            replica, video = self._idle.pop(), self.videos[self._queue.popleft()]
            video.state, video.replica = "running", replica
            video.attempts += 1
            self._running[replica] = video.job.video_id
            pairs.append((replica, video.job))
        return pairs

    def finished(self, replica: int, outcome: VideoOutcome) -> None:
        """The replica answered for its video (done, or failed for a reason of the video's own)."""
        video = self.videos[self._running.pop(replica)]
        video.state, video.replica = ("done" if outcome.status in ("done", "skipped") else "failed"), None
        self.outcomes.append(outcome)
        self._idle.append(replica)

    def lost(self, replica: int, error: str, now: float) -> VideoOutcome | None:
        """The replica died while running its video: run the video again, or fail it when its attempts
        are used up (returned). The replica is probed from now on."""
        video = self.videos[self._running.pop(replica)]
        video.replica = None
        self._lost_since.setdefault(replica, now)
        self._probe_at[replica] = now
        if video.attempts < self.max_attempts:
            video.state = "pending"
            video.retried += 1
            self._queue.appendleft(video.job.video_id)  # nothing partial was kept: it starts over
            return None
        video.state = "failed"
        outcome = VideoOutcome(video.job.video_id, "failed", reason=f"replica died {video.attempts} times: {error}")
        self.outcomes.append(outcome)
        return outcome

    def probes_due(self, now: float) -> list[int]:
        """Lost replicas to ask whether they are back; each is asked once until `probe_failed`."""
        due = [replica for replica, at in self._probe_at.items() if at <= now]
        for replica in due:
            del self._probe_at[replica]
        return due

    def recovered(self, replica: int) -> None:
        self._lost_since.pop(replica, None)
        self._idle.append(replica)

    def probe_failed(self, replica: int, now: float) -> None:
        """Still gone: ask again shortly, unless it has been gone for `recovery_s`."""
        if now - self._lost_since[replica] < self.recovery_s:
            self._probe_at[replica] = now + PROBE_INTERVAL_S

    def give_up(self, now: float) -> list[VideoOutcome]:
        """When no replica is left and every dead one has been gone for `recovery_s`: fail what is pending."""
        stranded = self._queue and not self._running and not self._idle
        if not stranded or any(now - since <= self.recovery_s for since in self._lost_since.values()):
            return []
        failed = []
        while self._queue:
            video = self.videos[self._queue.popleft()]
            video.state = "failed"
            failed.append(VideoOutcome(video.job.video_id, "failed", reason="no replica recovered"))
        self.outcomes += failed
        return failed
