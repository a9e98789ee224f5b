#!/usr/bin/env bash
# Train the bundled model (sam2.1_hiera_mini) from scratch on generated data and export it:
#   1. prompts: single frames, the decoder learns to follow boxes and clicks (encoder frozen)
#   2. images: the same with the image encoder trained too
#   3. video: clips through the memory, correction clicks, everything trained
#   4. points: clips again with the automatic mask generator's grid clicks on every frame (encoder frozen);
#      it starts from stage 3 exported as the bundled weights, and its export replaces them
# Each stage resumes from its last checkpoint when run again. Extra arguments go to every stage
# (e.g. --workers 2 --gpu for Ray Train).
set -euo pipefail
cd "$(dirname "$0")/.."
train=(.venv/bin/sam2-ray train)
"${train[@]}" --config configs/training/mini_image.yaml --out outputs/train/mini_image "$@"
"${train[@]}" --config configs/training/mini_images.yaml --out outputs/train/mini_images "$@"
"${train[@]}" --config configs/training/mini.yaml --out outputs/train/mini "$@"
"${train[@]}" --export outputs/train/mini/last.pt sam2/weights/sam2.1_hiera_mini.pt
"${train[@]}" --config configs/training/mini_points.yaml --out outputs/train/mini_points "$@"
"${train[@]}" --export outputs/train/mini_points/last.pt sam2/weights/sam2.1_hiera_mini.pt
