"""The one labelling run (`pipelines.labelling.label`) without Ray: what runs, what is written back, when a
model starts."""

from __future__ import annotations

import numpy as np

from pipelines.labelling import label
from sam2_ray.labeler import VideoOutcome
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import MaskletRow, Prompt, VideoJob
from sam2_ray.scheduler import JobSummary
from sam2_ray.sources import PlannedJobs

JOBS = [VideoJob(f"v{i}", f"v{i}.mp4", (Prompt(1, 0, box=(0, 0, 4, 4)),)) for i in range(3)]


class Source:
    def read(self):
        return PlannedJobs(list(JOBS), [VideoOutcome("bad", "failed", reason="no media")])


class Sink:
    def __init__(self):
        self.written, self.closed = [], 0

    def write(self, store, finished):
        self.written += [(job.video_id, outcome.status) for job, outcome in finished]

    def close(self, store):
        self.closed += 1


class Runtime:
    started: list[list[str]] = []

    def __init__(self, store):
        self.store = store

    def run(self, jobs, progress):
        Runtime.started.append([job.video_id for job in jobs])
        mask = np.ones((4, 4), bool)
        for job in jobs:
            self.store.write_video(job.video_id, [MaskletRow.from_mask(job.video_id, 1, 0, mask, 1, 1, True, "m")])
        return JobSummary([VideoOutcome(job.video_id, "done", 1, 1) for job in jobs], 1.0)

    def close(self):
        pass


def test_finished_videos_are_written_back_without_starting_a_model(tmp_path):
    store, sink = MaskletStore(tmp_path), Sink()
    Runtime.started = []
    store.write_video("v1", [])  # labelled by an earlier run
    run = label(Source(), sink, store, lambda: Runtime(store), batch_size=1)
    assert Runtime.started == [["v0"], ["v2"]]
    assert sink.written == [("v1", "skipped"), ("v0", "done"), ("v2", "done")] and sink.closed == 1
    assert [(o.video_id, o.status) for o in run.summary.outcomes] == [
        ("v1", "skipped"), ("v0", "done"), ("v2", "done"), ("bad", "failed")]

    def no_model():
        raise AssertionError("every video is in the store: nothing should start")

    again = label(Source(), Sink(), store, no_model)
    assert again.runtime is None and {o.status for o in again.summary.outcomes} == {"skipped", "failed"}
