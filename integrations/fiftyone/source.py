"""A FiftyOne view as a `JobSource`: the prompts of its samples (see `prompts.py`) as `VideoJob`s, and
every sample that cannot run as a rejected outcome named by its sample id."""

from __future__ import annotations

from sam2_ray.labeler import VideoOutcome
from sam2_ray.sources import PlannedJobs

from .media import ensure_metadata
from .prompts import prompt_jobs


class FiftyOneSource:
    """`salt` names the model, so that a kept store is reused only for the same prompts and model."""

    def __init__(self, view, prompt_field: str, salt: str = "") -> None:
        self.view, self.prompt_field, self.salt = view, prompt_field, salt

    def read(self) -> PlannedJobs:
        ensure_metadata(self.view)  # frame sizes convert relative prompts to pixels
        found = prompt_jobs(self.view, self.prompt_field, salt=self.salt)
        rejected = [VideoOutcome(sample_id, "failed", reason=reason) for sample_id, reason in found.failed.items()]
        rejected += [VideoOutcome(sample_id, "skipped", reason="no prompts") for sample_id in found.unprompted]
        return PlannedJobs(found.jobs, rejected)
