"""The paper's retrieval protocol: test videos query the training videos by their features.

The pieces have their own homes: the metric in :mod:`iic_helpers.metrics`, feature
extraction in :mod:`iic_helpers.features`, building the backbone a checkpoint needs in
:mod:`iic_helpers.checkpoint`. Their public names are re-exported here, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import backbone_for_checkpoint, load_backbone, model_source, source_name
from .config import Config, resolve_device
from .data.builders import clip_dataset, resolve_data_root
from .data.splits import VideoRecord
from .features import (
    FEATURE_KINDS,
    RETRIEVAL_VIEWS,
    NonFiniteFeaturesError,
    check_finite,
    clip_features,
    extract_features,
    merge_views,
)
from .metrics import (
    DEFAULT_KS,
    DEFAULT_MAX_ELEMENTS,
    chance_top1,
    chance_topk,
    nearest_neighbours,
    retrieval_hits,
    topk_retrieval,
    video_features,
    video_labels,
)
from .runs import locks_run_dir, update_results

__all__ = [
    # the protocol
    "checkpoint_view2",
    "load_retrieval_features",
    "run_retrieval",
    # re-exported from their homes
    "DEFAULT_KS",
    "DEFAULT_MAX_ELEMENTS",
    "FEATURE_KINDS",
    "RETRIEVAL_VIEWS",
    "NonFiniteFeaturesError",
    "backbone_for_checkpoint",
    "chance_top1",
    "chance_topk",
    "check_finite",
    "clip_features",
    "extract_features",
    "load_backbone",
    "merge_views",
    "model_source",
    "nearest_neighbours",
    "retrieval_hits",
    "source_name",
    "topk_retrieval",
    "video_features",
    "video_labels",
]


def checkpoint_view2(checkpoint: Any, cfg: Config) -> str:
    """The second view retrieval merges with RGB.

    ``cfg.retrieval_view`` names it (``"res"``, ``"u"``, ``"v"``), or is ``"checkpoint"``:
    the view the checkpoint was pretrained with (this project's ``config["view2"]``, the
    original's ``opt.modality``; ``cfg.view2`` for a random network). A checkpoint
    pretrained on RGB/RGB is scored with residual frames.
    """
    wanted = getattr(cfg, "retrieval_view", "res")
    if wanted != "checkpoint":
        view2 = wanted
    else:
        view2 = getattr(cfg, "view2", "res")
        if isinstance(checkpoint, dict):
            saved = checkpoint.get("config")
            opt = checkpoint.get("opt")
            if isinstance(saved, dict) and "view2" in saved:
                view2 = str(saved["view2"])
            elif opt is not None and hasattr(opt, "modality"):
                view2 = str(opt.modality)
        view2 = "res" if view2 == "rgb" else view2
    if view2 not in RETRIEVAL_VIEWS[1:]:
        raise ValueError(
            f"retrieval_view must be 'checkpoint' or one of {RETRIEVAL_VIEWS[1:]}, got {view2!r}"
        )
    return view2


@locks_run_dir("retrieve", lambda **_: None)
def run_retrieval(
    cfg: Config,
    checkpoint: str | Path | None = None,
    run_dir: str | Path | None = None,
    *,
    max_videos: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """The paper's retrieval protocol: test videos query the training videos.

    Builds eval datasets (``cfg.eval_clips`` clips per video, centre crop), a backbone
    (random when ``checkpoint`` is None: the paper's "random init" row), extracts RGB and
    view-2 features (``cfg.retrieval_features``; view 2 from :func:`checkpoint_view2`:
    residual frames, or u/v flow from ``<root>/flow`` for a flow-pretrained checkpoint) and
    writes ``<run_dir>/results.json`` with ``"retrieval"`` (RGB and view 2 merged, as the
    original's ``--merge``) and ``"retrieval_variants"`` (``"rgb"``, the view-2 name,
    ``"merged"``). Returns that dict.
    """
    device = resolve_device(cfg.device)
    root = resolve_data_root(cfg.data_root)
    model, obj = load_backbone(cfg, checkpoint)
    name, width = backbone_for_checkpoint(obj, cfg)
    view2 = checkpoint_view2(obj, cfg)
    views = ("rgb", view2) if view2 in ("u", "v") else ("rgb",)
    gallery_set = clip_dataset(cfg, "train", "eval", max_videos=max_videos, views=views)
    query_set = clip_dataset(cfg, "test", "eval", max_videos=max_videos, views=views)
    kwargs = dict(
        views=("rgb", view2),
        features=cfg.retrieval_features,
        device=device,
        num_workers=cfg.num_workers,
        progress=progress,
    )
    gallery, gallery_labels = extract_features(model, gallery_set, **kwargs)
    query, query_labels = extract_features(model, query_set, **kwargs)
    gallery["merged"], query["merged"] = merge_views(gallery, view2), merge_views(query, view2)
    variants = {}
    for view in ("rgb", view2, "merged"):
        acc = topk_retrieval(query[view], query_labels, gallery[view], gallery_labels)
        variants[view] = {f"top{k}": v for k, v in acc.items()}
    results = {
        "retrieval": variants["merged"],
        "retrieval_variants": variants,
        "view2": view2,
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "backbone": name,
        "width": width,
        "features": cfg.retrieval_features,
        "feature_dim": int(query["merged"].shape[-1]),
        "eval_clips": int(query["rgb"].shape[1]),
        "n_query": int(len(query_labels)),
        "n_gallery": int(len(gallery_labels)),
        "chance_top1": chance_top1(query_labels, gallery_labels),
    }
    if run_dir is not None:
        run_dir = update_results(run_dir, results).parent
        np.savez_compressed(
            run_dir / "retrieval_features.npz",
            query_labels=query_labels,
            gallery_labels=gallery_labels,
            data_root=np.array(str(cfg.data_root)),
            data_root_resolved=np.array(str(root.resolve())),
            query_paths=np.array(_root_relative(query_set.records, root)),
            gallery_paths=np.array(_root_relative(gallery_set.records, root)),
            **{f"query_{v}": query[v] for v in ("rgb", view2)},
            **{f"gallery_{v}": gallery[v] for v in ("rgb", view2)},
        )
    return results


def _root_relative(records: Sequence[VideoRecord], root: Path) -> list[str]:
    """Each record's video path relative to the dataset root (``videos/<Class>/<file>``),
    so that a features file does not depend on the working directory it was written from."""
    base = root.resolve()
    out = []
    for r in records:
        path = Path(r.path).resolve()
        out.append(str(path.relative_to(base)) if path.is_relative_to(base) else str(path))
    return out


def load_retrieval_features(
    run_dir: str | Path, data_root: str | Path | None = None
) -> dict[str, np.ndarray]:
    """What :func:`run_retrieval` saved: ``{query,gallery}_{rgb,<view2>,labels,paths}`` arrays
    (``<view2>`` is ``res``, ``u`` or ``v``).

    The file stores video paths relative to the dataset root; they come back resolved against
    ``data_root`` (default: the root the features were computed on), so they can be read
    from any working directory.
    """
    path = Path(run_dir) / "retrieval_features.npz"
    if not path.exists():
        raise FileNotFoundError(f"no features at {path}: run retrieval first (notebook 03)")
    with np.load(path) as data:
        feats = {key: data[key] for key in data.files}
    stored_root = feats.pop("data_root", None)
    resolved = feats.pop("data_root_resolved", None)
    if stored_root is not None or data_root is not None:
        if data_root is not None:
            base = resolve_data_root(data_root)
        elif resolved is not None and Path(str(resolved)).is_dir():
            base = Path(str(resolved))  # the root the features were computed on
        else:  # moved since: the root as configured
            base = resolve_data_root(str(stored_root))
        base = base.resolve()
        for key in ("query_paths", "gallery_paths"):
            feats[key] = np.array([str(base / p) for p in feats[key]])
    return feats
