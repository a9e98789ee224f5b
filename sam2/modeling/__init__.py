"""Model modules, one file per architectural piece; parameter names match official checkpoints."""
