"""Video retrieval with frozen features: top-k accuracy and nearest neighbours.

The protocol of the original ``retrieve_clips.py``: each test video (query) looks up its
nearest training videos (gallery) by cosine distance between clip-averaged features, and
scores a hit at ``k`` when any of its ``k`` nearest gallery videos has its label. Unlike
the original, no video is dropped (its loader used ``drop_last=True``), and the distance
matrix is computed in chunks of queries so that memory stays bounded for any gallery.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .runs import locks_run_dir

__all__ = [
    "DEFAULT_KS",
    "video_features",
    "video_labels",
    "retrieval_hits",
    "topk_retrieval",
    "nearest_neighbours",
    "chance_topk",
]

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20, 50)
#: Distance-matrix elements computed at once (chunk of queries x gallery): 64 MB in float32.
DEFAULT_MAX_ELEMENTS = 1 << 24

ArrayLike = np.ndarray | torch.Tensor


class NonFiniteFeaturesError(FloatingPointError):
    """A model produced NaN or infinite features: its weights are broken."""


def check_finite(values: torch.Tensor | np.ndarray, what: str, source: str) -> None:
    """Raise :class:`NonFiniteFeaturesError` naming ``source`` unless every value is finite."""
    t = _as_tensor(values)
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t.reshape(t.shape[0], -1))).any(1).sum()) if t.dim() else 1
        raise NonFiniteFeaturesError(
            f"{what} of {source} are not finite (NaN or inf for {bad} of {t.shape[0]} items): "
            "its weights are broken (a diverged run or a corrupt file); nothing was written"
        )


def source_name(checkpoint: Any) -> str:
    """How messages name a checkpoint argument (a path, an in-memory dict, or none)."""
    if checkpoint is None:
        return "a random network"
    if isinstance(checkpoint, (str, Path)):
        return f"checkpoint {checkpoint}"
    return "the given checkpoint object"


def model_source(model: torch.nn.Module) -> str:
    """What a model's weights came from, for messages (set by :func:`load_backbone`)."""
    return str(getattr(model, "checkpoint_source", "the model"))


def _as_tensor(x: ArrayLike) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    return t.detach().cpu()


def video_features(feats: ArrayLike) -> torch.Tensor:
    """Clip-averaged video features ``(N, D)`` from ``(N, clips, D)`` or ``(N, D)``.

    Float64 stays float64; other float dtypes compute in float32. Clips are averaged
    without normalisation, as in the original.
    """
    t = _as_tensor(feats)
    if not t.is_floating_point():
        raise TypeError(f"features must be floating point, got {t.dtype}")
    if t.dtype != torch.float64:
        t = t.float()
    if t.dim() == 3:
        return t.mean(dim=1)
    if t.dim() == 2:
        return t
    raise ValueError(f"features must be (N, clips, D) or (N, D), got shape {tuple(t.shape)}")


def video_labels(labels: ArrayLike) -> torch.Tensor:
    """Video labels ``(N,)`` int64; clip-level labels ``(N, clips)`` use clip 0's label."""
    t = _as_tensor(labels)
    if t.dim() == 2:
        t = t[:, 0]
    if t.dim() != 1:
        raise ValueError(f"labels must be (N,) (or (N, clips)), got shape {tuple(t.shape)}")
    return t.long()


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm; all-zero rows stay zero (distance 1 to everything)."""
    norm = x.norm(dim=1, keepdim=True)
    return x / torch.where(norm > 0, norm, torch.ones_like(norm))


def _neighbour_chunks(
    query: torch.Tensor, gallery: torch.Tensor, k: int, max_elements: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(indices, distances)`` of the ``k`` nearest gallery rows, chunk by chunk.

    No normalised or transposed copy of the gallery is made: each chunk of unit-norm query
    rows is multiplied with the raw gallery (NumPy's matmul, faster than torch's on this
    CPU kind, see ``benchmarks/RESULTS.md``) and divided by the gallery norms.

    Args:
        query: ``(Nq, D)`` features. gallery: ``(Ng, D)`` features. ``k <= Ng``.

    Yields:
        ``(rows, k)`` int64 indices and cosine distances, nearest first.
    """
    norms = gallery.norm(dim=1)
    inv_norms = 1.0 / torch.where(norms > 0, norms, torch.ones_like(norms))
    gallery_t = gallery.numpy().T  # a view
    rows_per_chunk = max(1, max_elements // max(1, gallery.shape[0]))
    for start in range(0, query.shape[0], rows_per_chunk):
        chunk = _unit_rows(query[start : start + rows_per_chunk]).numpy()
        sims = torch.from_numpy(chunk @ gallery_t).mul_(inv_norms)
        top_sims, top_idx = torch.topk(sims, k, dim=1, largest=True, sorted=True)
        yield top_idx, (1.0 - top_sims).clamp_(0.0, 2.0)


def _check_pair(query: torch.Tensor, gallery: torch.Tensor) -> None:
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"query and gallery feature sizes differ: {query.shape[1]} vs {gallery.shape[1]}"
        )
    if gallery.shape[0] == 0:
        raise ValueError("the gallery is empty")
    if query.dtype != gallery.dtype:
        dtype = torch.promote_types(query.dtype, gallery.dtype)
        raise ValueError(f"cast query and gallery to one dtype (e.g. {dtype})")


def nearest_neighbours(
    query_feats: ArrayLike,
    gallery_feats: ArrayLike,
    k: int,
    *,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest gallery videos of every query by cosine distance.

    Args:
        query_feats: ``(Nq, clips, D)`` or ``(Nq, D)``.
        gallery_feats: ``(Ng, clips, D)`` or ``(Ng, D)``.
        k: neighbours per query (capped at ``Ng``).
        max_elements: distance-matrix entries held at once (memory bound).

    Returns:
        ``(indices, distances)``: numpy ``(Nq, k)`` int64 gallery indices, nearest first, and
        their cosine distances ``1 - cos`` in ``[0, 2]``.
    """
    query = video_features(query_feats)
    gallery = video_features(gallery_feats)
    _check_pair(query, gallery)
    k = min(int(k), gallery.shape[0])
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    parts = list(_neighbour_chunks(query, gallery, k, max_elements))
    if not parts:
        return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float64)
    indices = torch.cat([p[0] for p in parts]).numpy()
    distances = torch.cat([p[1] for p in parts]).numpy()
    return indices, distances


def retrieval_hits(
    query_feats: ArrayLike,
    query_labels: ArrayLike,
    gallery_feats: ArrayLike,
    gallery_labels: ArrayLike,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> dict[int, np.ndarray]:
    """Per-query hits: ``{k: (Nq,) bool}``, True when a label match is among the k nearest.

    Arguments as :func:`topk_retrieval`. ``k`` larger than the gallery uses the whole gallery.
    """
    query = video_features(query_feats)
    gallery = video_features(gallery_feats)
    _check_pair(query, gallery)
    q_labels, g_labels = video_labels(query_labels), video_labels(gallery_labels)
    if q_labels.shape[0] != query.shape[0] or g_labels.shape[0] != gallery.shape[0]:
        raise ValueError(
            f"labels do not match features: {q_labels.shape[0]} query labels for "
            f"{query.shape[0]} videos, {g_labels.shape[0]} gallery labels for "
            f"{gallery.shape[0]} videos"
        )
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    k_max = min(max(ks), gallery.shape[0])
    hits: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    start = 0
    for idx, _ in _neighbour_chunks(query, gallery, k_max, max_elements):
        match = g_labels[idx] == q_labels[start : start + idx.shape[0], None]  # (rows, k_max)
        first_match = torch.where(match.any(1), match.float().argmax(1), k_max)
        for k in ks:
            hits[k].append(first_match < min(k, k_max))
        start += idx.shape[0]
    return {k: torch.cat(v).numpy() if v else np.zeros(0, bool) for k, v in hits.items()}


def topk_retrieval(
    query_feats: ArrayLike,
    query_labels: ArrayLike,
    gallery_feats: ArrayLike,
    gallery_labels: ArrayLike,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> dict[int, float]:
    """Top-k retrieval accuracy, the paper's video retrieval metric.

    Args:
        query_feats: test-set features ``(Nq, clips, D)`` (clips averaged) or ``(Nq, D)``;
            numpy or torch, any float dtype.
        query_labels: ``(Nq,)`` int labels (``(Nq, clips)`` uses clip 0, as the original).
        gallery_feats: training-set features ``(Ng, clips, D)`` or ``(Ng, D)``.
        gallery_labels: ``(Ng,)``.
        ks: the k values (the paper: 1, 5, 10, 20, 50).
        max_elements: distance-matrix entries held at once (memory bound).

    Returns:
        ``{k: fraction of queries with a hit at k}`` (every query counts; none dropped).

    Example:
        >>> g = np.eye(3); q = np.eye(3) + 0.1
        >>> topk_retrieval(q, [0, 1, 2], g, [0, 1, 2], ks=(1,))
        {1: 1.0}
    """
    hits = retrieval_hits(
        query_feats, query_labels, gallery_feats, gallery_labels, ks, max_elements=max_elements
    )
    return {k: float(h.mean()) if h.size else 0.0 for k, h in hits.items()}


# --------------------------------------------------------------------------- features

FEATURE_KINDS = ("conv5", "pool")
RETRIEVAL_VIEWS = ("rgb", "res", "u", "v")


def clip_features(model: torch.nn.Module, clips: torch.Tensor, kind: str) -> torch.Tensor:
    """Retrieval features of clips ``(B, C, T, H, W)`` from a backbone's conv5 map.

    ``"conv5"``: the original's features, max-pool (1, 2, 2) then flatten (C, T, H, W);
    9216-d for 16x112x112 input at width 64. ``"pool"``: global average, ``(B, 8w)``.
    """
    fmap = model.forward_features(clips)
    if kind == "pool":
        return fmap.mean(dim=(2, 3, 4))
    if kind == "conv5":
        if fmap.shape[-1] < 2 or fmap.shape[-2] < 2:
            raise ValueError(
                f"conv5 map {tuple(fmap.shape[1:])} is too small for the (1, 2, 2) max-pool; "
                "use features='pool' at this input size"
            )
        return torch.nn.functional.max_pool3d(fmap, (1, 2, 2), (1, 2, 2)).flatten(1)
    raise ValueError(f"features must be one of {FEATURE_KINDS}, got {kind!r}")


@torch.no_grad()
def extract_features(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    *,
    views: Sequence[str] = ("rgb", "res"),
    features: str = "conv5",
    batch_size: int = 8,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    source: str | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features of every video of an eval-mode dataset, for each view, in one pass.

    Every evaluation (retrieval, linear probe, embeddings) extracts its features here, so
    the check that they are finite is made once for all of them.

    Args:
        model: a backbone with ``forward_features`` (put in eval mode here).
        dataset: items ``(clips, label, i)``, ``clips`` ``(N_clips, C, T, H, W)``.
        views: any of ``"rgb"``, ``"res"`` (residual frames of the RGB clips; these two by
            default), ``"u"``, ``"v"`` (optical flow: the dataset must hold that view, its
            items being dicts ``{view: clips}``).
        features: ``"conv5"`` or ``"pool"`` (see :func:`clip_features`).
        source: the checkpoint named when features are not finite (default: the model's
            ``checkpoint_source``, set by :func:`load_backbone`).

    Returns:
        ``({view: (N, N_clips, D) float32}, labels (N,) int64)``; no video is dropped.

    Raises:
        NonFiniteFeaturesError: a feature is NaN or infinite (broken weights).
    """
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from .views import residual

    for view in views:
        if view not in RETRIEVAL_VIEWS:
            raise ValueError(f"views must be among {RETRIEVAL_VIEWS}, got {view!r}")
    device = torch.device(device)
    model = model.eval().to(device)
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, drop_last=False, num_workers=num_workers
    )
    out: dict[str, list[np.ndarray]] = {view: [] for view in views}
    labels = []
    for clips, label, _ in tqdm(loader, desc="features", disable=not progress, leave=False):
        by_view = clips if isinstance(clips, dict) else {"rgb": clips}
        b, n = next(iter(by_view.values())).shape[:2]
        flat = {name: c.flatten(0, 1).to(device) for name, c in by_view.items()}
        for view in views:
            needed = "rgb" if view == "res" else view
            if needed not in flat:
                raise ValueError(
                    f"view {view!r} needs {needed!r} clips: build the dataset with "
                    f"views=('rgb', {needed!r})"
                )
            x = residual(flat["rgb"]) if view == "res" else flat[needed]
            out[view].append(clip_features(model, x, features).float().view(b, n, -1).cpu().numpy())
        labels.append(torch.as_tensor(label).view(-1))
    feats = {view: np.concatenate(chunks) for view, chunks in out.items()}
    for view, values in feats.items():
        check_finite(values, f"{view} features", source or model_source(model))
    return feats, torch.cat(labels).numpy().astype(np.int64)


def merge_views(feats: dict[str, np.ndarray], view2: str = "res") -> np.ndarray:
    """The original's ``--merge``: RGB features and ``view2``'s (residual, u or v flow)
    concatenated along the feature axis, not normalised: ``(N, clips, D_rgb + D_view2)``."""
    return np.concatenate([feats["rgb"], feats[view2]], axis=-1)


def checkpoint_view2(checkpoint: Any, cfg: Any) -> str:
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


# --------------------------------------------------------------------------- the whole protocol


def backbone_for_checkpoint(checkpoint: Any, cfg: Any) -> tuple[str, int]:
    """``(backbone name, width)`` a checkpoint was trained with.

    This project's checkpoints carry their ``config``; original IIC pretraining
    checkpoints carry ``opt.model`` at width 64; otherwise ``cfg``'s values are used.
    """
    if isinstance(checkpoint, dict):
        saved = checkpoint.get("config")
        if isinstance(saved, dict) and "backbone" in saved:
            return str(saved["backbone"]), int(saved["width"])
        opt = checkpoint.get("opt")
        if opt is not None and hasattr(opt, "model"):
            return str(opt.model), 64
    return cfg.backbone, cfg.width


def load_backbone(
    cfg: Any, checkpoint: str | Path | dict | None = None, *, strict: bool = True
) -> tuple[torch.nn.Module, Any]:
    """The backbone a checkpoint holds (ours or original), or a seeded random one.

    Returns ``(model, checkpoint object or None)``; architecture and width come from the
    checkpoint when it says (:func:`backbone_for_checkpoint`), else from ``cfg``.
    """
    from .models import build_backbone, load_weights, read_checkpoint

    obj = read_checkpoint(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    name, width = backbone_for_checkpoint(obj, cfg)
    torch.manual_seed(cfg.seed)
    model = build_backbone(name, width=width)
    model.checkpoint_source = source_name(checkpoint)
    if obj is not None:
        load_weights(model, obj, strict=strict)
    return model, obj


@locks_run_dir("retrieve", lambda **_: None)
def run_retrieval(
    cfg: Any,
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
    from .config import resolve_device
    from .data.builders import clip_dataset

    device = resolve_device(cfg.device)
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
        "chance_top1": _chance_top1(query_labels, gallery_labels),
    }
    if run_dir is not None:
        from .runs import update_results

        run_dir = update_results(run_dir, results).parent
        np.savez_compressed(
            run_dir / "retrieval_features.npz",
            query_labels=query_labels,
            gallery_labels=gallery_labels,
            query_paths=np.array([str(r.path) for r in query_set.records]),
            gallery_paths=np.array([str(r.path) for r in gallery_set.records]),
            **{f"query_{v}": query[v] for v in ("rgb", view2)},
            **{f"gallery_{v}": gallery[v] for v in ("rgb", view2)},
        )
    return results


def load_retrieval_features(run_dir: str | Path) -> dict[str, np.ndarray]:
    """What :func:`run_retrieval` saved: ``{query,gallery}_{rgb,<view2>,labels,paths}`` arrays
    (``<view2>`` is ``res``, ``u`` or ``v``)."""
    path = Path(run_dir) / "retrieval_features.npz"
    if not path.exists():
        raise FileNotFoundError(f"no features at {path}: run retrieval first (notebook 03)")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def _chance_top1(query_labels: np.ndarray, gallery_labels: np.ndarray) -> float:
    """Expected top-1 of a random ranking: mean gallery frequency of each query's label."""
    counts = np.bincount(
        gallery_labels, minlength=int(max(query_labels.max(), gallery_labels.max())) + 1
    )
    return float((counts[query_labels] / len(gallery_labels)).mean())


def chance_topk(
    query_labels: ArrayLike, gallery_labels: ArrayLike, ks: Sequence[int] = DEFAULT_KS
) -> dict[int, float]:
    """Expected top-k of a random ranking of this gallery: ``{k: fraction of queries}``.

    A random ranking's k nearest are k gallery videos drawn without replacement, so a query
    of class ``c`` misses with probability ``C(G - n_c, k) / C(G, k)`` (``G`` gallery videos,
    ``n_c`` of class ``c``); the result averages ``1 - miss`` over the queries. ``k = 1`` is
    the class frequency; with 10 balanced classes top-5 is already about 41 %.
    """
    q_labels = video_labels(query_labels).numpy()
    g_labels = video_labels(gallery_labels).numpy()
    size = int(max(q_labels.max(initial=0), g_labels.max(initial=0))) + 1
    counts = np.bincount(g_labels, minlength=size)[q_labels].astype(np.float64)  # n_c per query
    total = len(g_labels)
    out = {}
    for k in ks:
        if k < 1:
            raise ValueError(f"ks must be positive integers, got {k}")
        miss = np.ones_like(counts)
        for i in range(min(int(k), total)):
            miss *= np.clip(total - counts - i, 0, None) / (total - i)
        out[int(k)] = float((1.0 - miss).mean()) if len(q_labels) else 0.0
    return out
