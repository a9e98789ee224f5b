"""Training and fine-tuning SAM 2 on video clips: losses, prompt simulation, the clip forward
pass and one readable training loop."""
