"""Errors the `sam2-ray` command reports as one line on stderr with exit code 2."""


class InvalidInput(ValueError):
    """A problem with what the user gave us (a missing file, a prompt outside the image)."""


def check_checkpoint(checkpoint: str, config, where: str = "") -> None:
    """Refuse a missing checkpoint file, a file that is not a checkpoint, or 'bundled' for a config that ships
    none, before any work starts."""
    from sam2.checkpoint import checkpoint_file  # lazily: torch is not needed to report a bad argument

    try:
        checkpoint_file(checkpoint, config)
    except (FileNotFoundError, ValueError) as error:
        raise InvalidInput(f"{where}{error}") from None
