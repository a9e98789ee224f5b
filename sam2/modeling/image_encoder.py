"""Image encoder: Hiera trunk + FPN neck, with sine position encodings per output level."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .position_encoding import SinePositionEncoding


class _Lateral(nn.Module):
    """1x1 conv to the neck width (kept as `convs.{i}.conv` to match checkpoint keys)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class FpnNeck(nn.Module):
    """Lateral 1x1 convs plus a nearest-neighbour top-down path on the chosen levels.

    `backbone_channel_list` is lowest resolution first, so `convs[0]` reads the stride-32 map.
    """

    def __init__(
        self,
        d_model: int,
        backbone_channel_list: list[int],
        fpn_top_down_levels: tuple[int, ...] = (2, 3),
    ) -> None:
        super().__init__()
        self.convs = nn.ModuleList(_Lateral(c, d_model) for c in backbone_channel_list)
        self.position_encoding = SinePositionEncoding(d_model)
        self.fpn_top_down_levels = set(fpn_top_down_levels)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """xs: stride 4..32 maps -> the same number of d_model maps, stride 4 first."""
        last = len(self.convs) - 1
        out: list[torch.Tensor] = [None] * len(xs)  # type: ignore[list-item]
        previous = None
        for i in range(last, -1, -1):
            lateral = self.convs[last - i](xs[i])
            if i in self.fpn_top_down_levels and previous is not None:
                top_down = F.interpolate(previous.to(torch.float32), scale_factor=2.0, mode="nearest")
                lateral = lateral + top_down
            out[i] = previous = lateral
        return out


class ImageEncoder(nn.Module):
    """Trunk + neck; drops the `scalp` lowest-resolution levels after the top-down pass."""

    def __init__(self, trunk: nn.Module, neck: FpnNeck, scalp: int = 1) -> None:
        super().__init__()
        self.trunk = trunk
        self.neck = neck
        self.scalp = scalp

    def forward(self, images: torch.Tensor) -> dict[str, object]:
        """images: B x 3 x S x S -> backbone_fpn (stride 4, 8, 16 maps), their PEs, vision_features."""
        features = self.neck(self.trunk(images))
        if self.scalp > 0:
            features = features[: -self.scalp]
        pos = [self.neck.position_encoding(f).to(f.dtype) for f in features]
        return {"vision_features": features[-1], "vision_pos_enc": pos, "backbone_fpn": features}
