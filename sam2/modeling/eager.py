"""Methods `torch.compile` must run eagerly (a graph break): caches of constant tables, which compiled
code should read, not recompute every call.

`torch.compiler.disable` imports `torch._dynamo` when it is applied, which costs about as much as importing
torch itself, in every process that imports the model (each Ray replica, each command), though most never
compile. So the methods are only marked at import, and `disable_marked()` disables them when `sam2.compile`
first compiles.
"""

from __future__ import annotations

_MARKED: list[tuple[type, str]] = []


class eager_under_compile:  # noqa: N801 (a decorator)
    """Mark a method to run eagerly under `torch.compile`; the class keeps the plain function until then."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def __set_name__(self, owner: type, name: str) -> None:
        _MARKED.append((owner, name))
        setattr(owner, name, self.fn)


def disable_marked() -> None:
    """Apply `torch.compiler.disable` to every marked method (once)."""
    import torch

    for owner, name in _MARKED:
        method = owner.__dict__[name]
        if not getattr(method, "_torchdynamo_disable", False):
            setattr(owner, name, torch.compiler.disable(method))
