"""A FiftyOne view as a `JobSource`: its samples as `VideoJob`s (see `prompts.py`), prompted, seeded by
detections or with every object found by the model, and every sample that cannot run as a rejected
outcome named by its sample id."""

from __future__ import annotations

from sam2_ray.labeler import VideoOutcome
from sam2_ray.sources import PlannedJobs

from .fields import InvalidField
from .media import ensure_metadata
from .prompts import detection_jobs, everything_jobs, prompt_jobs


class FiftyOneSource:
    """`prompt_field`: track its prompts (mode "prompts"); `detections_field`: start and extend tracks from
    its detections (mode "detections"); neither: find every object (mode "everything"). `salt` names the
    model, so that a kept store is reused only for the same prompts or detections and model."""

    def __init__(self, view, prompt_field: str | None = None, salt: str = "",
                 detections_field: str | None = None) -> None:
        if prompt_field and detections_field:
            raise InvalidField(f"give a prompt field or a detections field, not both ({prompt_field!r}, "
                               f"{detections_field!r})")
        self.view, self.prompt_field, self.detections_field, self.salt = view, prompt_field, detections_field, salt

    @property
    def mode(self) -> str:
        return "prompts" if self.prompt_field else "detections" if self.detections_field else "everything"

    def read(self) -> PlannedJobs:
        ensure_metadata(self.view)  # frame sizes convert relative boxes and points to pixels
        if self.prompt_field:
            found, nothing = prompt_jobs(self.view, self.prompt_field, salt=self.salt), "no prompts"
        elif self.detections_field:
            found = detection_jobs(self.view, self.detections_field, salt=self.salt)
            nothing = f"no detections in {self.detections_field!r}"
        else:
            found, nothing = everything_jobs(self.view, salt=self.salt), ""
        rejected = [VideoOutcome(sample_id, "failed", reason=reason) for sample_id, reason in found.failed.items()]
        rejected += [VideoOutcome(sample_id, "skipped", reason=nothing) for sample_id in found.unprompted]
        return PlannedJobs(found.jobs, rejected)
