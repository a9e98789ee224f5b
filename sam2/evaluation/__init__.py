"""J&F evaluation of video object segmentation (SA-V / DAVIS protocol), and of prompt-free tracks
matched to ground-truth objects (tracks.py), in numpy and scipy: no torch needed. Masks are plain
dicts, video_id -> frame_idx -> obj_id -> H x W bool (masks.py); scores are in [0, 1]."""

from .jf import Evaluation, ObjectScore, Score, VideoScore, evaluate, evaluate_video
from .masks import FrameMasks, InvalidMasks, LazyVideos, VideoMasks, from_array, split_labels
from .metrics import boundary_f_measure, boundary_map, boundary_radius, region_similarity
from .readers import (
    read_davis_folder,
    read_davis_video,
    read_sav_folder,
    read_sav_json,
    read_sav_json_file,
    read_sav_video,
)
from .tracks import (
    ObjectMatch,
    PairScores,
    TrackEvaluation,
    TrackMatching,
    evaluate_tracks,
    match_tracks,
    pair_scores,
)

__all__ = [
    "Evaluation", "FrameMasks", "InvalidMasks", "LazyVideos", "ObjectMatch", "ObjectScore", "PairScores", "Score",
    "TrackEvaluation", "TrackMatching", "VideoMasks", "VideoScore", "boundary_f_measure", "boundary_map",
    "boundary_radius", "evaluate", "evaluate_tracks", "evaluate_video", "from_array", "match_tracks", "pair_scores",
    "read_davis_folder", "read_davis_video", "read_sav_folder", "read_sav_json", "read_sav_json_file",
    "read_sav_video", "region_similarity", "split_labels",
]
