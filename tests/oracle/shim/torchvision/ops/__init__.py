"""Box ops used by the reference's automatic mask generator."""

from .boxes import batched_nms, box_area, nms

__all__ = ["batched_nms", "box_area", "nms"]
