"""Embedding explorer: features as retrieval, cached projections, neighbours, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from iic_helpers.config import make_config
from iic_helpers.explorer import build_explorer, explore, thumbnail_sample
from iic_helpers.explorer import data as explorer_data
from iic_helpers.explorer.data import neighbours_of

REPO = Path(__file__).resolve().parents[1]
IIC = REPO / "checkpoints" / "tiny-iic-repeat.pt"
CMC = REPO / "checkpoints" / "tiny-cmc.pt"


@pytest.fixture(scope="module")
def cfg(tiny_root: Path):
    torch.set_num_threads(1)
    return make_config("tiny", data_root=str(tiny_root), eval_clips=2)


def test_neighbours_are_the_nearest_other_videos_by_cosine() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 6)).astype(np.float32)
    x[7] = x[3] * 2.0  # same direction: cosine distance 0 to video 3
    nn = neighbours_of(x, 4)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    expected = np.argsort(-sims, axis=1, kind="stable")[:, :4]
    assert nn.shape == (30, 4)
    assert not (nn == np.arange(30)[:, None]).any(), "a video is never its own neighbour"
    np.testing.assert_array_equal(nn[:, 0], expected[:, 0])
    assert nn[3, 0] == 7 and nn[7, 0] == 3


def test_thumbnail_sample_is_even_and_capped() -> None:
    assert thumbnail_sample(10, 20).tolist() == list(range(10))
    chosen = thumbnail_sample(13_320, 600)
    assert len(chosen) == 600 and chosen[0] == 0 and chosen[-1] == 13_319
    assert np.diff(chosen).max() - np.diff(chosen).min() <= 1


def test_panel_features_are_the_retrieval_features(cfg, tmp_path: Path) -> None:
    """The explorer's video features equal retrieval's merged, clip-averaged features."""
    from iic_helpers.data.builders import clip_dataset
    from iic_helpers.retrieval import extract_features, load_backbone, merge_views, video_features

    feats, _ = explorer_data.cached_features(
        cfg, IIC, tmp_path, split="test", view="merged", progress=False
    )
    model, _ = load_backbone(cfg, IIC)
    ref, _ = extract_features(
        model, clip_dataset(cfg, "test", "eval"), features=cfg.retrieval_features, progress=False
    )
    np.testing.assert_allclose(feats["videos"], video_features(merge_views(ref)).numpy(), atol=1e-6)


def test_projection_and_features_are_cached_and_seeded(cfg, tmp_path: Path, monkeypatch) -> None:
    kwargs = dict(split="both", method="pca", cache_root=tmp_path, progress=False, thumbnails=4)
    _, table, panels = build_explorer(cfg, [IIC], extras=["repeat"], **kwargs)
    assert len(table) == 36 and sum(bool(t) for t in table.thumbnails) == 4
    assert panels[0].xy.shape == (36, 2) and panels[0].extras["repeat"].shape == (36, 2)
    assert len(list(tmp_path.glob("*/features-*.npz"))) == 1
    assert len(list(tmp_path.glob("*/projection-*-pca-s0.npy"))) == 1
    assert len(list(tmp_path.glob("*/neighbours-*-k5.npy"))) == 1

    def no_extraction(*args, **kwargs):
        raise AssertionError("features were recomputed instead of read from the cache")

    monkeypatch.setattr(explorer_data, "_extract", no_extraction)
    monkeypatch.setattr(explorer_data, "neighbours_of", no_extraction)
    _, _, again = build_explorer(cfg, [IIC], extras=["repeat"], color_by="group", **kwargs)
    np.testing.assert_array_equal(again[0].xy, panels[0].xy)
    kwargs["method"] = "tsne"  # another projection reuses the cached features
    _, _, tsne = build_explorer(cfg, [IIC], extras=["repeat"], **kwargs)
    assert len(list(tmp_path.glob("*/projection-*-tsne-s0.npy"))) == 1
    assert not np.allclose(tsne[0].xy, panels[0].xy)


def test_page_is_self_contained(cfg, tmp_path: Path) -> None:
    out = explore(
        cfg, ["random", CMC], tmp_path / "page.html", method="pca", cache_root=tmp_path,
        progress=False, thumbnails=3,
    )  # fmt: skip
    text = out.read_text()
    assert "data:image/gif;base64," in text
    import re

    tags = re.findall(r"<(?:script|link|img)\b[^>]*>", text)
    assert not [t for t in tags if re.search(r"(src|href)=[\"']?(https?:)?//", t)], tags
    assert sum(t.startswith("<script") for t in tags) >= 2, "BokehJS is inlined, not linked"
    assert "random init" in text and "tiny-cmc" in text
    assert not list(tmp_path.glob(".page.html.*")), "no temporary file left behind"


# --------------------------------------------------------------------------- bad input


def _cli(*args: str) -> tuple[int, str]:
    import contextlib
    import io

    from iic_helpers.__main__ import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["explore", *args])
    lines = err.getvalue().strip().splitlines()
    errors = [line for line in lines if line.startswith("explore: error")]
    # besides the error, only notes (e.g. "carries no tensor digest") may be printed
    assert all(line.startswith("note:") for line in lines if line not in errors), lines
    return code, "\n".join(errors)


def test_checkpoint_of_another_architecture_is_one_line(cfg, tmp_path: Path) -> None:
    from iic_helpers.models import build_backbone

    other = tmp_path / "c3d.pt"
    torch.save(build_backbone("c3d", width=4).state_dict(), other)  # a raw state dict
    code, err = _cli(
        "--data-root", cfg.data_root, "--checkpoint", str(other), "--method", "pca",
        "--out", str(tmp_path / "page.html"), "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert code == 2 and len(err.splitlines()) == 1
    assert str(other) in err and "not a r3d" in err and "pretrain" in err
    assert not (tmp_path / "page.html").exists()


def test_root_without_videos_is_one_line(cfg, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(Path(cfg.data_root) / "splits", root / "splits")
    code, err = _cli(
        "--data-root", str(root), "--checkpoint", str(IIC), "--out", str(tmp_path / "p.html"),
        "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert code == 2 and len(err.splitlines()) == 1
    assert "missing" in err and str(root / "videos") in err and "make-synthetic" in err


@pytest.mark.parametrize("where", ["no-folder", "parent-is-a-file", "a-folder"])
def test_unwritable_out_is_one_line_and_checked_first(cfg, tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir").mkdir()
    out = {
        "no-folder": tmp_path / "nope" / "p.html",
        "parent-is-a-file": tmp_path / "file" / "p.html",
        "a-folder": tmp_path / "dir",
    }[where]
    code, err = _cli(
        "--data-root", cfg.data_root, "--checkpoint", str(IIC), "--out", str(out),
        "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert code == 2 and len(err.splitlines()) == 1 and str(out) in err
    assert not (tmp_path / "cache").exists(), "the out path is checked before any work"


def test_a_failed_write_leaves_no_page(tmp_path: Path, monkeypatch) -> None:
    from iic_helpers.explorer import page

    out = tmp_path / "p.html"
    out.write_text("the previous page")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(page.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        page.write_page("<html>new</html>", out)
    assert out.read_text() == "the previous page"
    assert [p.name for p in tmp_path.iterdir()] == ["p.html"]
