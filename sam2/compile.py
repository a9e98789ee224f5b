"""`torch.compile` of the tracking pieces, for `build_sam2_video_predictor(..., vos_optimized=True)`.

Compiled, as in Meta's `SAM2VideoPredictorVOS`: the image encoder (one fixed input size, so static
shapes), the memory encoder, the memory attention and the mask decoder. Their other dimensions do
change within a video (the object batch, the memory length as the bank fills, the number of object
pointers), so those three use PyTorch's automatic dynamic shapes: the first call compiles for its
exact shapes, and a dimension that later changes is recompiled once as symbolic, instead of once
per value (which would hit dynamo's recompile limit with many objects). Not compiled: the prompt
encoder (microseconds of work, while a compilation costs seconds on CPU), and on CPU the mask
decoder, whose hand-laid-out upscaling and few-key softmax run slower as inductor's C++ loops than
eagerly.

On CPU the gain is small (benchmarks/compile.py; the README's Benchmarks section has the figures): most
of memory attention, the largest cost, is the fused attention kernel, which compiled code calls just
as eager code does; inductor saves on the element-wise work around it.
The default inductor backend needs a C++ compiler there (Triton on CUDA). If the backend cannot
compile, every compiled piece of that model falls back to its eager forward, with one warning,
instead of failing the call. Outputs match eager up to float rounding (fused kernels sum in
another order); `tests/test_video_predictor.py` checks masks and logits on a small model.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from sam2.modeling.eager import disable_marked

COMPILED = {"image_encoder": False, "memory_encoder": None, "memory_attention": None, "sam_mask_decoder": None}
"""Submodule -> `dynamic` option of torch.compile (False: static shapes, None: automatic)."""

EAGER_ON_CPU = ("sam_mask_decoder",)


def pieces_to_compile(device: torch.device) -> list[str]:
    return [name for name in COMPILED if not (device.type == "cpu" and name in EAGER_ON_CPU)]


class _Fallback:
    """Shared by a model's compiled pieces: once the backend failed, all of them run eagerly."""

    def __init__(self) -> None:
        self.active = False

    def trip(self, error: Exception) -> None:
        if not self.active:
            warnings.warn(f"torch.compile is not available here, running eagerly: {str(error).splitlines()[0]}",
                          RuntimeWarning, stacklevel=4)
        self.active = True


class CompiledForward:
    """A module's forward through torch.compile, with the eager forward kept for the fallback."""

    def __init__(self, eager, fallback: _Fallback, **options) -> None:
        self.eager = eager
        self.compiled = torch.compile(eager, **options)
        self.fallback = fallback

    def __call__(self, *args, **kwargs):
        if not self.fallback.active:
            try:
                return self.compiled(*args, **kwargs)
            except torch._dynamo.exc.BackendCompilerFailed as error:  # raised before the graph runs
                self.fallback.trip(error)
        return self.eager(*args, **kwargs)


def compile_for_tracking(model: nn.Module, backend: str = "inductor", mode: str | None = None) -> nn.Module:
    """Compile the tracking pieces of a SAM 2 model for the device it is on, in place (parameters and
    state dict unchanged); returns the model. Compilation happens lazily, on the first frames
    tracked. A second call is a no-op."""
    disable_marked()
    fallback = _Fallback()
    for name in pieces_to_compile(model.device):
        module = getattr(model, name)
        if isinstance(module.forward, CompiledForward):
            continue
        module.forward = CompiledForward(module.forward, fallback, backend=backend, mode=mode, dynamic=COMPILED[name])
    return model
