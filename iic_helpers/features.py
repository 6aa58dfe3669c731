"""Frozen features of a backbone for every video of a dataset, checked to be finite.

Every evaluation (retrieval, linear probe, embeddings) extracts its features here, so the
check that a model's outputs are finite (:func:`check_finite`) lives here too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .checkpoint import model_source
from .views import residual

__all__ = [
    "FEATURE_KINDS",
    "RETRIEVAL_VIEWS",
    "NonFiniteFeaturesError",
    "check_finite",
    "clip_features",
    "extract_features",
    "merge_views",
]

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
            ``checkpoint_source``, set by :func:`~iic_helpers.checkpoint.load_backbone`).

    Returns:
        ``({view: (N, N_clips, D) float32}, labels (N,) int64)``; no video is dropped.

    Raises:
        NonFiniteFeaturesError: a feature is NaN or infinite (broken weights).
    """
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
    concatenated along the feature axis, not normalized: ``(N, clips, D_rgb + D_view2)``."""
    return np.concatenate([feats["rgb"], feats[view2]], axis=-1)


class NonFiniteFeaturesError(FloatingPointError):
    """A model produced NaN or infinite features: its weights are broken."""


def check_finite(values: torch.Tensor | np.ndarray, what: str, source: str) -> None:
    """Raise :class:`NonFiniteFeaturesError` naming ``source`` unless every value is finite."""
    t = values if isinstance(values, torch.Tensor) else torch.from_numpy(np.asarray(values))
    t = t.detach().cpu()
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t.reshape(t.shape[0], -1))).any(1).sum()) if t.dim() else 1
        raise NonFiniteFeaturesError(
            f"{what} of {source} are not finite (NaN or inf for {bad} of {t.shape[0]} items): "
            "its weights are broken (a diverged run or a corrupt file); nothing was written"
        )
