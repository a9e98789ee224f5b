"""Small random-weight models for tests that exercise code paths rather than accuracy."""

from __future__ import annotations

import torch

from sam2.config import TrunkConfig, load_config
from sam2.sam2_video_predictor import SAM2VideoPredictor


def tiny_config(image_size: int = 128):
    """SAM 2.1's structure with a four-block Hiera at 128 px: milliseconds per frame."""
    trunk = TrunkConfig(embed_dim=16, num_heads=1, stages=(1, 1, 1, 1), global_att_blocks=(3,),
                        window_spec=(8, 4, 4, 2), window_pos_embed_bkg_spatial_size=(4, 4))
    return load_config("sam2.1_hiera_t").replace(name="tiny-test", image_size=image_size, trunk=trunk)


def tiny_video_model(seed: int = 0, score_bias: float = 2.0) -> SAM2VideoPredictor:
    """Random weights, with the object-score head biased so objects are judged present."""
    torch.manual_seed(seed)
    model = SAM2VideoPredictor(tiny_config(), fill_hole_area=8, binarize_mask_from_pts_for_mem_enc=True).eval()
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[2].bias += score_bias
    return model


def write_config_yaml(config, path):
    """A ModelConfig as a YAML file that `load_config(path)` reads back."""
    import dataclasses

    import yaml

    values = dataclasses.asdict(config)
    values["trunk"] = {k: list(v) if isinstance(v, tuple) else v for k, v in values["trunk"].items()}
    path.write_text(yaml.safe_dump(values))
    return path


def micro_config():
    """The mini model's structure at 128 px with narrow widths: a training step in well under a second."""
    return load_config("sam2.1_hiera_mini").replace(name="micro-test", image_size=128, d_model=64, mem_dim=16,
                                                    memory_attention_layers=1, memory_attention_ffn=128,
                                                    decoder_mlp_dim=128)
