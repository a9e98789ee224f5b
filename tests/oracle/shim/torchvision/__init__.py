"""Minimal torchvision stand-in for running the reference SAM 2 on CPU.

torchvision has no CPU wheel matching our torch here, and the reference needs only a handful
of its calls (`transforms.ToTensor/Resize/Normalize`, `ops.boxes.batched_nms/box_area`).
Each is re-implemented with torchvision's numerics for the cases the reference exercises.
Only the oracle subprocess puts this directory on its path.
"""

__version__ = "0.0.0+sam2-ray-oracle-shim"
