"""The two ends of every labelling run, in the shape each tool implements: a source reads the tool's prompts
as `VideoJob`s, a sink writes finished jobs' masklets back to it. The pipelines wire a source, the runtime
and a sink together; an integration (Label Studio, FiftyOne, manifest files; CVAT next) is one source and
one sink, knowing its tool and these records only (docs/new-integration.md)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .labeler import VideoOutcome
from .masklet_store import MaskletStore
from .records import Prompt, VideoJob


@dataclass
class PlannedJobs:
    """What a source found: the jobs to run, and the entries that cannot run, each with its reason (status
    "failed": bad prompts or media; "skipped": nothing to label). An entry's `video_id` is the source's
    own name for it (a task id, a sample id, a manifest line)."""

    jobs: list[VideoJob] = field(default_factory=list)
    rejected: list[VideoOutcome] = field(default_factory=list)


class JobSource(Protocol):
    def read(self) -> PlannedJobs:
        """Every job the tool holds prompts for; a problem with the whole source (unreachable, a field that
        is not there) raises ValueError before any work starts."""
        ...


class MaskletSink(Protocol):
    def write(self, store: MaskletStore, finished: Sequence[tuple[VideoJob, VideoOutcome]]) -> None:
        """Write back a batch of finished jobs (done ones are in `store`) while the run goes on."""
        ...

    def close(self, store: MaskletStore) -> None:
        """After the last batch: the work that needs every job (a bulk replace, review routing)."""
        ...


def job_id(name: str, prompts: Sequence[Prompt], *context: object) -> str:
    """A source entry's `video_id`: its own name for the entry (a task, a sample) and a digest of its prompts and
    `context` (what else the masks depend on: the model, the media). A re-run reuses what the store holds for the
    same prompts, media and model, and tracks again what changed (the store skips a finished video by id)."""
    digest = hashlib.sha256()
    for p in prompts:
        digest.update(repr((p.obj_id, p.frame_idx, p.points, p.labels, p.box, p.label)).encode())
        if p.mask is not None:
            mask = np.asarray(p.mask, dtype=bool)
            digest.update(repr(mask.shape).encode() + np.packbits(mask).tobytes())
    for item in context:
        digest.update(b"\0" + repr(item).encode())
    return f"{name}-{digest.hexdigest()[:12]}"
