"""Jobs through the project's Serve app instead of a Ray job: for the App operator, whose server
may only reach a running service over HTTP. Each video is one session (prompts, then forward and
backward propagation), and its frames are written to a masklet store exactly as a Ray replica
writes them, so both paths share the same write-back."""

from __future__ import annotations

from collections.abc import Callable

from sam2_ray.labeler import VideoOutcome
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import MaskletRow, VideoJob
from sam2_ray.serve.client import SAM2Client
from sam2_ray.serve.errors import RequestError


def label_video(client: SAM2Client, job: VideoJob, store: MaskletStore) -> VideoOutcome:
    """One job through a video session into the store; a refused request fails this video only."""
    if store.is_done(job.video_id):
        return VideoOutcome(job.video_id, "skipped", reason="already in the store")
    try:
        with client.open_video(job.uri) as session:
            for p in job.prompts:
                if p.mask is not None:
                    session.add_mask(p.frame_idx, p.obj_id, p.mask)
                else:
                    session.add_points(p.frame_idx, p.obj_id, p.points, p.labels, p.box)
            model = client.model or "serve"
            with store.writer(job.video_id) as writer:
                for frame in session.propagate(backward=True):
                    writer.add(_rows(job.video_id, frame, model))
            return VideoOutcome(job.video_id, "done", len(writer.frames), writer.rows)
    except RequestError as error:
        return VideoOutcome(job.video_id, "failed", reason=str(error))


def _rows(video_id: str, frame, model: str):
    for obj_id, mask in frame.masks.items():
        yield MaskletRow.from_mask(video_id, obj_id, frame.frame_idx, mask, frame.scores[obj_id],
                                   frame.ious.get(obj_id, float("nan")), frame.prompted[obj_id], model)


def label_videos(url: str, jobs: list[VideoJob], store: MaskletStore, model: str | None = None,
                 token: str | None = None,
                 on_video: Callable[[VideoOutcome], None] | None = None) -> list[VideoOutcome]:
    outcomes = []
    with SAM2Client(url, token=token, model=model) as client:
        for job in jobs:
            outcomes.append(label_video(client, job, store))
            if on_video is not None:
                on_video(outcomes[-1])
    return outcomes
