"""Presets: ``tiny`` (CPU, synthetic data) and ``paper`` (GPU, UCF101/HMDB51, the official recipe).

A :class:`Config` is a flat dataclass so that every field can be overridden from a notebook
(``make_config("tiny", epochs=3)``) or the command line (``--set k=512``). It is saved as
``config.json`` in every run directory and restored on ``--resume``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "Config",
    "PRESETS",
    "epoch_seed",
    "make_config",
    "parse_overrides",
    "quick_mode",
    "resolve_device",
]


@dataclass
class Config:
    """Every setting of pretraining, evaluation and fine-tuning (paper values by default)."""

    preset: str = "paper"
    # data
    data_root: str = "data/ucf101"
    split: int = 1
    clip_len: int = 16
    resize: tuple[int, int] = (128, 171)
    crop: int = 112
    flip: bool = False
    num_workers: int = 8
    cache_videos: bool = False
    rgb_source: str = "videos"  # videos | frames (<root>/frames/<video_id>/frame000001.jpg)
    drop_last_frame: bool = False  # True: never use a video's last frame (the original)
    # model
    backbone: str = "r3d"
    width: int = 64
    # IIC objective
    view2: str = "res"  # res | rgb | u | v
    intra_negative: str = "repeat"  # repeat | shuffle | none (= CMC baseline) | custom
    intra_negative_fn: str = ""  # with "custom": the name of the user's function (pretrain)
    k: int = 1024
    temperature: float = 0.07
    nce_momentum: float = 0.5
    softmax: bool = True
    normalize_features: bool = False
    center_features: bool = False
    negative_gradient: bool = False
    # optimisation (pretraining)
    epochs: int = 240
    batch_size: int = 16
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_milestones: tuple[int, ...] = (45, 90, 125, 160)
    lr_gamma: float = 0.2
    drop_last: bool = False
    # evaluation
    eval_clips: int = 10
    retrieval_features: str = "conv5"  # conv5 | pool
    retrieval_view: str = "checkpoint"  # view merged with RGB: checkpoint (its view2) | res | u | v
    # fine-tuning (ft_lr: layers named linear/conv4/conv5; ft_base_lr: the others)
    ft_epochs: int = 150
    ft_lr: float = 1e-3
    ft_base_lr: float = 1e-3
    ft_weight_decay: float = 5e-4
    # validation videos held out of the training list: -1 = the original's count (800 for
    # UCF101-format lists, 400 for HMDB51's), N > 0 = N videos, 0 = ft_val_fraction of them;
    # always at least 1 and at most VAL_MAX_FRACTION of the list (finetune.validation_size)
    ft_val_videos: int = -1
    ft_val_fraction: float = 0.1
    ft_patience: int = 50  # ReduceLROnPlateau on the validation loss, factor 0.1
    ft_view: str = "res"  # rgb | res (the original fine-tunes on residual clips)
    ft_select: str = "loss"  # keep the epoch with the lowest validation loss | accuracy
    # run
    seed: int = 632
    device: str = "auto"
    amp: bool = False  # bf16 autocast on CUDA (a speed option; the original trains in fp32)
    channels_last: bool = True  # channels_last_3d pretraining, CPU and CUDA (benchmarks/)
    sync_batchnorm: bool = False  # torchrun: BatchNorm over the global batch (CUDA only)
    cpu_bf16: bool = False  # bf16 autocast on the CPU as well (off: benchmarks/RESULTS.md)
    # CPU, 2 or 3 threads: each view's backward pass on its own one-thread worker, summed in
    # a fixed order (iic_helpers.parallel_backward; benchmarks/RESULTS.md)
    cpu_parallel_backward: bool = True
    save_every: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Config:
        """A saved configuration; fields it lacks (older runs) come from its own preset.

        Older runs also saved an always-empty ``extra`` field that nothing read; an empty
        one is dropped.
        """
        values = {k: v for k, v in values.items() if not (k == "extra" and v == {})}
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}")
        base = PRESETS.get(str(values.get("preset")), cls())
        return base.replace(**values)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Config:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def replace(self, **overrides: Any) -> Config:
        """A copy with fields replaced; values are coerced to the field's type."""
        hints = typing.get_type_hints(type(self))
        names = {f.name for f in dataclasses.fields(self)}
        coerced = {}
        for name, value in overrides.items():
            if name not in names:
                raise ValueError(
                    f"unknown config field {name!r}; fields are: {', '.join(sorted(names))}"
                )
            coerced[name] = _coerce(name, value, hints[name])
        return dataclasses.replace(self, **coerced)


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Coerce JSON / command-line values to the annotated type (tuples, bools, numbers)."""
    origin = typing.get_origin(hint)
    try:
        if origin is tuple:
            if isinstance(value, str):
                value = [v for v in value.replace("x", ",").split(",") if v.strip()]
            item = typing.get_args(hint)[0]
            return tuple(item(v) for v in value)
        if hint is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(value)
                return lowered in {"true", "1", "yes"}
            return bool(value)
        if hint in (int, float, str):
            if hint is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return hint(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"config field {name!r}: cannot read {value!r} as {hint}") from err
    return value


PAPER = Config()

#: Sized by measurement on a 2-core CPU (see README, "The tiny preset").
TINY = Config(
    preset="tiny",
    data_root="data/synthetic",
    clip_len=16,
    resize=(55, 73),  # the paper's 128x171 -> 112 proportions at crop 48
    crop=48,  # at 32 px a supervised run stayed at chance for 40 epochs (README)
    num_workers=0,
    cache_videos=True,
    backbone="r3d",
    width=8,
    k=64,
    temperature=0.2,  # 0.07 never left the uniform loss at this scale (README)
    nce_momentum=0.0,  # each memory row is refreshed once per epoch: keep only the newest
    normalize_features=True,  # the faithful unnormalized features collapse (README)
    center_features=True,
    negative_gradient=True,
    epochs=60,  # at 30, 3 of 6 IIC runs were still on their plateau (README, ablation)
    batch_size=16,
    lr=0.1,
    lr_milestones=(1000,),
    eval_clips=5,
    retrieval_features="pool",
    ft_epochs=30,  # a supervised run leaves its plateau well inside 30 epochs at lr 0.05 (README)
    ft_lr=0.05,
    ft_base_lr=0.05,
    ft_weight_decay=1e-4,
    ft_val_videos=0,  # a fraction (below) of the synthetic training list
    ft_val_fraction=0.1,
    ft_patience=1000,  # no plateau decay within the short schedule
    ft_view="rgb",  # measured with RGB input (README, ablation)
    ft_select="accuracy",  # measured with the best validation accuracy
    retrieval_view="res",  # every ablation row is scored on merged RGB + residual features
    amp=True,  # unchanged since the measurements (bf16 autocast applies on CUDA only)
    seed=0,
)

PRESETS: dict[str, Config] = {"paper": PAPER, "tiny": TINY}


def make_config(preset: str = "tiny", **overrides: Any) -> Config:
    """The preset ``preset`` with fields overridden: ``make_config("tiny", epochs=2)``."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[preset].replace(**overrides)


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """``["k=512", "view2=rgb"]`` -> ``{"k": "512", "view2": "rgb"}`` (coerced by ``replace``)."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set expects FIELD=VALUE, got {pair!r}")
        out[name.strip()] = value.strip()
    return out


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def quick_mode(default: bool = False) -> bool:
    """True when the environment variable ``IIC_QUICK=1`` is set (CI), else ``default``."""
    return os.environ.get("IIC_QUICK", "") == "1" or default


def epoch_seed(
    seed: int, epoch: int, *, seed_stride: int = 1_000_003, epoch_stride: int = 7919
) -> int:
    """The seed of one epoch's randomness, the one formula every training loop uses:
    ``(seed * seed_stride + epoch * epoch_stride) mod 2**31``.

    Pretraining uses the default strides; fine-tuning keeps the strides its recorded
    numbers were made with (``epoch_stride=1`` for its torch seed, both strides 1 for its
    sampler), so the shipped checkpoints and the ablation table are unchanged.

    >>> epoch_seed(632, 3)
    632025653
    >>> epoch_seed(0, 5, seed_stride=1, epoch_stride=1)
    5
    """
    return (seed * seed_stride + epoch * epoch_stride) % (2**31)
