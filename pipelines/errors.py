"""Errors the `sam2-ray` command reports as one line on stderr with exit code 2."""


class InvalidInput(ValueError):
    """A problem with what the user gave us (a missing file, a prompt outside the image)."""
