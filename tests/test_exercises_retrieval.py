"""Notebook 03's exercise check passes the solution and names typical mistakes."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from iic_helpers.exercises.retrieval import check_topk


def solution(query, query_labels, gallery, gallery_labels, k):
    similarity = F.normalize(query, dim=1) @ F.normalize(gallery, dim=1).T
    nearest = similarity.topk(k, dim=1).indices
    return (gallery_labels[nearest] == query_labels[:, None]).any(1).float().mean().item()


def euclidean(query, query_labels, gallery, gallery_labels, k):
    nearest = torch.cdist(query, gallery).topk(k, dim=1, largest=False).indices
    return (gallery_labels[nearest] == query_labels[:, None]).any(1).float().mean().item()


def precision(query, query_labels, gallery, gallery_labels, k):
    similarity = F.normalize(query, dim=1) @ F.normalize(gallery, dim=1).T
    nearest = similarity.topk(k, dim=1).indices
    return (gallery_labels[nearest] == query_labels[:, None]).float().mean().item()


def least_similar(query, query_labels, gallery, gallery_labels, k):
    similarity = F.normalize(query, dim=1) @ F.normalize(gallery, dim=1).T
    nearest = similarity.topk(k, dim=1, largest=False).indices
    return (gallery_labels[nearest] == query_labels[:, None]).any(1).float().mean().item()


def percent(*args):
    return 100 * solution(*args)


def blank(*args):
    raise NotImplementedError


def constant(*args):
    return 0.5


def test_check_topk_passes_the_solution(capsys) -> None:
    assert check_topk(solution)
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (euclidean, "Euclidean"),
        (precision, "ANY"),
        (least_similar, "least"),
        (percent, "percentage"),
        (blank, "not written yet"),
        (constant, "expected"),
    ],
)
def test_check_topk_names_the_mistake(fn, message, capsys) -> None:
    assert not check_topk(fn)
    out = capsys.readouterr().out
    assert "✗" in out and message in out, out
