"""Oracle job: save the freshly initialised model's weights, perturbed, as a checkpoint.

inputs: `seed` (int), `path` (where to torch.save `{"model": state_dict}`). Returns nothing.

A fresh SAM 2 has tensors that hide bugs: zero position embeddings, LayerNorm weights of 1
and biases of 0, zero conv/linear biases, layer-scale gammas of 1e-6, and `get_clones` layers
(memory attention, fuser) that start identical. So every tensor gets seeded gaussian noise:
a constant tensor of value c gets std 0.1 * max(1, |c|) (norm weights become 1 + 0.1 * n, zero
embeddings and biases 0.1 * n, large enough to matter next to ~0.5-std activations), any other
tensor 0.1 * its own std (keeps its scale, breaks the symmetry of cloned layers).
"""

from typing import Any

import numpy as np
import torch


def run(model: torch.nn.Module, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    gen = torch.Generator().manual_seed(int(inputs["seed"]))
    state = model.state_dict()
    for t in state.values():
        noise = torch.randn(t.shape, generator=gen, dtype=t.dtype)
        flat = t.flatten()
        if bool((flat == flat[0]).all()):
            std = 0.1 * max(1.0, abs(float(flat[0])))
        else:
            std = 0.1 * float(flat.std())
        t.add_(noise * std)  # state_dict tensors share storage with the model
    torch.save({"model": model.state_dict()}, inputs["path"])
    return {}
