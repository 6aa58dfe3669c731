"""Data: split lists, video decoding, clip datasets, transforms, the synthetic set, validation.

A dataset root has one layout for every dataset, synthetic or real::

    <root>/splits/   classInd.txt, trainlist0N.txt, testlist0N.txt (UCF101 format), or
                     HMDB51's official <class>_test_split<N>.txt files
    <root>/videos/   <Class>/<video file>
    <root>/frames/   <video_id>/frame000001.jpg        (optional)
    <root>/flow/u/, <root>/flow/v/                     (optional)
"""

from .builders import clip_dataset, resolve_data_root
from .dataset import ClipDataset, ShortVideoWarning, eval_clip_starts, seed_worker
from .motion_baselines import (
    MOTION_FEATURE_NAMES,
    compare_baselines,
    linear_probe_accuracy,
    motion_features,
    single_frame_features,
)
from .samples import SAMPLE_VIDEOS, sample_video
from .splits import SplitFormatError, VideoRecord, read_classes, read_split, split_format
from .synthetic import (
    SYNTHETIC_CLASSES,
    make_synthetic_dataset,
    render_synthetic_video,
    synthetic_video_name,
)
from .transforms import ClipTransform, eval_transform, to_clip, to_video, train_transform
from .validate import ValidationReport, VideoCheck, check_video, validate_dataset
from .video import (
    VideoInfo,
    VideoReadError,
    count_frames,
    count_jpeg_frames,
    find_frame_dir,
    probe_video,
    read_clip,
    read_frames,
    read_jpeg_frames,
    read_video,
    resize_video,
    resize_videos,
    write_video,
)

__all__ = [
    "MOTION_FEATURE_NAMES",
    "SAMPLE_VIDEOS",
    "SYNTHETIC_CLASSES",
    "ClipDataset",
    "ClipTransform",
    "ShortVideoWarning",
    "SplitFormatError",
    "ValidationReport",
    "VideoCheck",
    "VideoInfo",
    "VideoReadError",
    "VideoRecord",
    "check_video",
    "clip_dataset",
    "compare_baselines",
    "count_frames",
    "count_jpeg_frames",
    "eval_clip_starts",
    "eval_transform",
    "find_frame_dir",
    "linear_probe_accuracy",
    "make_synthetic_dataset",
    "motion_features",
    "probe_video",
    "read_classes",
    "read_clip",
    "read_frames",
    "read_jpeg_frames",
    "read_split",
    "read_video",
    "render_synthetic_video",
    "resize_video",
    "resize_videos",
    "resolve_data_root",
    "seed_worker",
    "sample_video",
    "single_frame_features",
    "split_format",
    "synthetic_video_name",
    "to_clip",
    "to_video",
    "train_transform",
    "validate_dataset",
    "write_video",
]
