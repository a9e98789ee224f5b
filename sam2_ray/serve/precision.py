"""A replica's compute precision, as the settings' `precision` names it: float32 (exact, the in-process
predictor's masks) or bfloat16 (bf16 autocast; the click decoder as a bf16 copy, see
`sam2_ray.image_models.SAM2ImageModel`)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def autocast(device: torch.device | str, dtype: torch.dtype) -> AbstractContextManager:
    """The context a replica's model calls run in: nothing for float32, autocast to `dtype` otherwise."""
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
