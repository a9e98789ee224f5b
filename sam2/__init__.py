"""SAM 2 / SAM 2.1 in plain PyTorch: Meta-compatible API, no Ray or tool imports."""

__version__ = "0.1.0"
