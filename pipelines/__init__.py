"""Runnable jobs and the `sam2-ray` command line: they wire sources, runtime and sinks."""
