"""Prompt-free labelling in the runtime: the `auto` section of the pipeline YAML, and the proposal source a
tracker makes from it for one job: the automatic mask generator for mode "everything"; the job's own
detections, or else the detector plug-in the YAML names, for mode "detections"."""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from sam2.masklet_discovery import DiscoveryOptions
from sam2.proposals import DetectorBoxes, GeneratedMasks, GivenBoxes, Proposal, ProposalSource

from .records import Detection


@dataclass(frozen=True)
class AutoSpec:
    """`every`: keyframe interval of the generator and of the detector; `detector`: "package.module:name" of
    a callable frame (H x W x 3 uint8 RGB) -> (boxes N x 4 xyxy pixels, labels N, scores N), or of a class
    whose instances are one (made once per replica, so it may load its weights there); `generator`: arguments
    of `SAM2AutomaticMaskGenerator`; `tracks`: how proposals become tracks (`DiscoveryOptions`)."""

    every: int = 8
    detector: str | None = None
    generator: dict = field(default_factory=dict)
    tracks: DiscoveryOptions = DiscoveryOptions()

    def __post_init__(self) -> None:
        if not isinstance(self.every, int) or isinstance(self.every, bool) or self.every < 1:
            raise ValueError(f"every must be a positive integer (frames between keyframes), got {self.every!r}")
        if self.detector is not None and not isinstance(self.detector, str):
            raise ValueError(f"detector must be 'package.module:name', got {self.detector!r}")
        if not isinstance(self.generator, dict):
            raise ValueError(f"generator must be a mapping of SAM2AutomaticMaskGenerator arguments, "
                             f"got {self.generator!r}")
        if self.generator:
            from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

            known = set(inspect.signature(SAM2AutomaticMaskGenerator).parameters) - {"model", "kwargs"}
            unknown = sorted(set(self.generator) - known)
            if unknown:
                raise ValueError(f"generator: unknown arguments {unknown} (known: {sorted(known)})")
        if isinstance(self.tracks, dict):
            names = {f.name for f in fields(DiscoveryOptions)}
            unknown = sorted(set(self.tracks) - names)
            if unknown:
                raise ValueError(f"tracks: unknown keys {unknown} (known: {sorted(names)})")
            object.__setattr__(self, "tracks", DiscoveryOptions(**self.tracks))

    def load_detector(self):
        """The detector callable, made now (None when the YAML names none)."""
        if self.detector is None:
            return None
        from .trackers import load_factory

        detector = load_factory(self.detector, "detector")
        if inspect.isclass(detector):
            try:
                detector = detector()
            except Exception as error:  # noqa: BLE001  (a plug-in's own failure, reported as a setting error)
                raise ValueError(f"detector {self.detector!r} could not be made: {type(error).__name__}: "
                                 f"{error}") from None
        if not callable(detector):
            raise ValueError(f"detector {self.detector!r} is not callable")
        return detector


class ProposalFactory:
    """What a tracker keeps for prompt-free jobs: the spec, and the generator and the detector, each made
    on first use and kept for the tracker's later jobs."""

    def __init__(self, spec: AutoSpec, model) -> None:
        self.spec, self.model = spec, model
        self._generator = self._detector = None

    def proposals(self, mode: str, detections: Sequence[Detection]) -> ProposalSource:
        if mode == "everything":
            if self._generator is None:
                from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

                self._generator = SAM2AutomaticMaskGenerator(self.model, **self.spec.generator)
            return GeneratedMasks(self._generator, self.spec.every)
        if mode != "detections":
            raise ValueError(f"mode {mode!r} takes prompts, not proposals")
        if detections:
            by_frame: dict[int, list[Proposal]] = defaultdict(list)
            for d in detections:
                by_frame[d.frame_idx].append(Proposal(box=d.box, label=d.label, score=d.score))
            return GivenBoxes(by_frame)
        if self.spec.detector is None:
            raise ValueError("mode 'detections' with no detections, and the pipeline YAML names no detector "
                             "(auto.detector)")
        if self._detector is None:
            self._detector = self.spec.load_detector()
        return DetectorBoxes(self._detector, self.spec.every)
