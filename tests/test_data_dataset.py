"""ClipDataset (clip positions, crops, views, short/bad videos, seeding) and validate_dataset."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from iic_helpers.data.dataset import ClipDataset, ShortVideoWarning, eval_clip_starts
from iic_helpers.data.splits import VideoRecord, read_split
from iic_helpers.data.transforms import ClipTransform, eval_transform, train_transform
from iic_helpers.data.validate import validate_dataset
from iic_helpers.data.video import VideoReadError, read_video, write_video


def numbered_frames(t: int, h: int = 16, w: int = 16, seed: int = 0) -> np.ndarray:
    """Random texture whose pixel (0, 0) holds the frame number."""
    frames = np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    frames[:, 0, 0, :] = np.arange(t, dtype=np.uint8)[:, None]
    return frames


def record(root: Path, name: str, label: int = 0, cls: str = "A") -> VideoRecord:
    video_id = Path(name).stem
    return VideoRecord(root / "videos" / cls / name, label, cls, video_id, f"{cls}/{name}")


def make_video(root: Path, name: str, frames: np.ndarray, label: int = 0) -> VideoRecord:
    rec = record(root, name, label)
    write_video(rec.path, frames, lossless=True)
    return rec


def frame_numbers(clip: torch.Tensor) -> list[int]:
    """Frame numbers of a (C, T, H, W) clip made from numbered_frames with transform=None."""
    return [round(v) for v in (clip[0, :, 0, 0] * 255).tolist()]


# ----------------------------------------------------------------------------- positions


def test_construction_opens_no_file_and_errors_name_the_video(tmp_path: Path) -> None:
    missing = record(tmp_path, "v_A_g01_c01.avi")
    dataset = ClipDataset([missing] * 3, clip_len=4)
    assert len(dataset) == 3 and dataset.labels == [0, 0, 0]
    with pytest.raises(VideoReadError, match=re.escape(f"{missing.path}: file not found")):
        dataset[1]
    empty = record(tmp_path, "v_A_g01_c02.avi")
    empty.path.parent.mkdir(parents=True, exist_ok=True)
    empty.path.write_bytes(b"")
    with pytest.raises(VideoReadError, match=re.escape(f"{empty.path}: file is empty")):
        ClipDataset([empty], mode="eval")[0]
    with pytest.raises(IndexError):
        dataset[3]
    with pytest.raises(ValueError, match="mode"):
        ClipDataset([missing], mode="test")
    with pytest.raises(ValueError, match="views"):
        ClipDataset([missing], views=("rgb", "res"))


def test_train_clip_is_raw_frames_at_a_uniform_start(tmp_path: Path) -> None:
    frames = numbered_frames(20, 12, 18)
    rec = make_video(tmp_path, "v_A_g01_c01.mp4", frames, label=3)
    dataset = ClipDataset([rec], clip_len=16)
    torch.manual_seed(0)
    starts = set()
    for _ in range(40):
        clip, label, index = dataset[0]
        assert (label, index) == (3, 0)
        assert clip.shape == (3, 16, 12, 18) and clip.dtype == torch.float32
        start = frame_numbers(clip)[0]
        expected = torch.from_numpy(frames[start : start + 16]).permute(3, 0, 1, 2) / 255
        torch.testing.assert_close(clip, expected, rtol=0, atol=0)
        starts.add(start)
    assert starts == set(range(5))  # every valid start 0..L-T, the last frame included


def test_eval_clips_are_evenly_spaced_as_in_the_original(tmp_path: Path) -> None:
    # The original: centres linspace(8, L-8, 10), starts int(centre - 8).
    for n in (16, 17, 50, 161, 1000):
        original = [int(c - 8) for c in np.linspace(8, n - 8, 10)]
        assert eval_clip_starts(n, 16, 10).tolist() == original
    assert eval_clip_starts(5, 16, 3).tolist() == [0, 0, 0]
    rec = make_video(tmp_path, "v_A_g01_c01.avi", numbered_frames(40))
    clips, label, index = ClipDataset([rec], clip_len=8, mode="eval", num_clips=5)[0]
    assert clips.shape == (5, 3, 8, 16, 16)
    starts = [frame_numbers(c)[0] for c in clips]
    assert starts == eval_clip_starts(40, 8, 5).tolist() == [0, 8, 16, 24, 32]
    assert all(
        frame_numbers(c) == list(range(s, s + 8)) for c, s in zip(clips, starts, strict=True)
    )
    # The original never used the last frame; that stays available.
    clips, _, _ = ClipDataset([rec], clip_len=8, mode="eval", num_clips=5, drop_last_frame=True)[0]
    assert frame_numbers(clips[-1])[-1] == 38


def test_short_video_is_looped_and_reported_once(tmp_path: Path) -> None:
    rec = make_video(tmp_path, "v_A_g01_c01.mp4", numbered_frames(5))
    dataset = ClipDataset([rec], clip_len=8)
    with pytest.warns(ShortVideoWarning, match=re.escape(str(rec.path))):
        clip, _, _ = dataset[0]
    assert frame_numbers(clip) == [0, 1, 2, 3, 4, 0, 1, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset[0]  # no second warning for the same video
    assert dataset.num_short_videos == 1 and dataset.short_videos == {rec.path: 5}
    eval_set = ClipDataset([rec], clip_len=8, mode="eval", num_clips=3)
    with pytest.warns(ShortVideoWarning):
        clips, _, _ = eval_set[0]
    assert [frame_numbers(c) for c in clips] == [[0, 1, 2, 3, 4, 0, 1, 2]] * 3


# ----------------------------------------------------------------------------- crops


def shifted_frames(t: int, h: int, w: int) -> np.ndarray:
    """Frame k is one texture moved k pixels to the right."""
    base = np.random.default_rng(1).integers(0, 256, (h, w + t, 3), dtype=np.uint8)
    return np.stack([base[:, t - k : t - k + w] for k in range(t)])


def assert_one_crop(clip: torch.Tensor) -> None:
    """For shifted_frames: frame k, column j+1 equals frame k-1, column j."""
    torch.testing.assert_close(clip[:, 1:, :, 1:], clip[:, :-1, :, :-1], rtol=0, atol=0)


def test_train_transform_crops_every_frame_alike() -> None:
    torch.manual_seed(0)
    frames = shifted_frames(8, 40, 48)
    for _ in range(5):
        assert_one_crop(train_transform(resize=None, crop=24)(frames))
    # Identical frames stay identical through the paper pipeline (resize, crop, flip).
    still = np.repeat(numbered_frames(1, 48, 64), 8, axis=0)
    for _ in range(5):
        clip = train_transform(resize=(32, 40), crop=24, flip=True)(still)
        assert clip.shape == (3, 8, 24, 24) and clip.dtype == torch.float32
        torch.testing.assert_close(clip, clip[:, :1].expand_as(clip), rtol=0, atol=0)
        assert 0 <= clip.min() and clip.max() <= 1


def test_the_crop_check_catches_a_per_frame_crop() -> None:
    """The original per-frame RandomCrop (torchvision >= 0.8) fails the check above."""
    torch.manual_seed(0)
    frames = torch.from_numpy(shifted_frames(8, 40, 48)).permute(0, 3, 1, 2)
    crop = v2.RandomCrop(24)
    per_frame = torch.stack([crop(f) for f in frames]).permute(1, 0, 2, 3).float()
    with pytest.raises(AssertionError):
        assert_one_crop(per_frame)


def test_eval_transform_is_a_centre_crop() -> None:
    frames = numbered_frames(4, 20, 30)
    clip = eval_transform(resize=None, crop=(10, 12))(frames)
    expected = torch.from_numpy(frames[:, 5:15, 9:21]).permute(3, 0, 1, 2) / 255
    torch.testing.assert_close(clip, expected, rtol=0, atol=0)
    resized = eval_transform()(np.zeros((2, 240, 320, 3), np.uint8))
    assert resized.shape == (3, 2, 112, 112)
    assert ClipTransform()(torch.from_numpy(frames)).shape == (3, 4, 20, 30)


def test_dataset_wraps_a_bare_v2_transform(tmp_path: Path) -> None:
    rec = make_video(tmp_path, "v_A_g01_c01.mp4", numbered_frames(6, 20, 30))
    clips, _, _ = ClipDataset([rec], clip_len=4, mode="eval", transform=v2.CenterCrop(8))[0]
    assert clips.shape == (10, 3, 4, 8, 8) and clips.dtype == torch.float32


# ----------------------------------------------------------------------------- views


def _jpeg_folder(folder: Path, images: list[np.ndarray]) -> None:
    folder.mkdir(parents=True)
    for k, image in enumerate(images, 1):
        Image.fromarray(image).save(folder / f"frame{k:06d}.jpg", quality=90)


def test_rgb_and_flow_views_share_one_crop(tmp_path: Path) -> None:
    """RGB and flow JPEG folders; identical files, so equal crops give equal clips."""
    rng = np.random.default_rng(0)
    grey = [rng.integers(0, 256, (24, 32), dtype=np.uint8) for _ in range(10)]
    rec = record(tmp_path, "v_HandStandPushups_g01_c01.avi")
    folder_id = "v_HandstandPushups_g01_c01"  # frame releases spell it this way
    _jpeg_folder(tmp_path / "frames" / folder_id, grey)
    _jpeg_folder(tmp_path / "flow" / "u" / folder_id, grey[:9])  # flow: one frame fewer
    _jpeg_folder(tmp_path / "flow" / "v" / folder_id, grey[:9])
    views = ("rgb", "u", "v")
    dataset = ClipDataset(
        [rec],
        clip_len=4,
        views=views,
        frames_root=tmp_path / "frames",
        transform=train_transform(resize=None, crop=12, flip=True),
    )
    torch.manual_seed(0)
    for _ in range(10):
        clips, _, _ = dataset[0]
        assert set(clips) == set(views)
        assert clips["rgb"].shape == (3, 4, 12, 12)
        torch.testing.assert_close(clips["u"], clips["rgb"], rtol=0, atol=0)
        torch.testing.assert_close(clips["v"], clips["rgb"], rtol=0, atol=0)
    eval_set = ClipDataset(
        [rec], clip_len=4, mode="eval", num_clips=3, views=views, frames_root=tmp_path / "frames"
    )
    clips, _, _ = eval_set[0]
    assert {v: tuple(c.shape) for v, c in clips.items()} == {v: (3, 3, 4, 24, 32) for v in views}
    # Aligned frames, clips spread over the 9 frames the flow has: starts 0, 2, 5.
    torch.testing.assert_close(clips["u"], clips["rgb"], rtol=0, atol=0)
    folder = tmp_path / "frames" / folder_id
    decoded = np.stack([np.asarray(Image.open(folder / f"frame{k:06d}.jpg")) for k in range(6, 10)])
    last = torch.from_numpy(decoded).float() / 255
    torch.testing.assert_close(clips["rgb"][2, 0], last, rtol=0, atol=0)
    with pytest.raises(VideoReadError, match="frame folder not found"):
        ClipDataset([record(tmp_path, "v_B_g01_c01.avi")], views=views)[0]


def test_jpeg_frames_match_the_video(tmp_path: Path) -> None:
    y, x = np.mgrid[0:16, 0:16]
    frames = np.stack([np.stack([x * 8 + k * 9, y * 8, x * 4 + y * 4], -1) for k in range(12)])
    rec = make_video(tmp_path, "v_A_g01_c01.avi", (frames % 256).astype(np.uint8))
    _jpeg_folder(tmp_path / "frames" / rec.video_id, list(read_video(rec.path)))
    from_video = ClipDataset([rec], clip_len=6, mode="eval", num_clips=2)[0][0]
    from_jpeg = ClipDataset(
        [rec], clip_len=6, mode="eval", num_clips=2, frames_root=tmp_path / "frames"
    )[0][0]
    assert from_video.shape == from_jpeg.shape == (2, 3, 6, 16, 16)
    assert (from_video - from_jpeg).abs().mean() < 0.02  # JPEG is lossy


# ----------------------------------------------------------------------------- seeding


def _dataset(tmp_path: Path, **kwargs) -> ClipDataset:
    records = [
        make_video(tmp_path, f"v_A_g01_c{k:02d}.mp4", numbered_frames(30, 20, 20, seed=k), k % 3)
        for k in range(6)
    ]
    return ClipDataset(records, clip_len=8, transform=train_transform((20, 24), 12), **kwargs)


def _epoch(dataset: ClipDataset, workers: int, seed: int = 0) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    loader = DataLoader(dataset, batch_size=2, num_workers=workers, shuffle=True)
    return [torch.cat([b[0].flatten(1), b[2][:, None].float()], 1) for b in loader]


def test_reproducible_under_manual_seed_with_and_without_workers(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path)
    clips, labels, index = next(iter(DataLoader(dataset, batch_size=4)))
    assert clips.shape == (4, 3, 8, 12, 12) and labels.tolist() == [0, 1, 2, 0]
    assert index.tolist() == [0, 1, 2, 3]
    for workers in (0, 2):
        first, again = _epoch(dataset, workers), _epoch(dataset, workers)
        assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
        other = _epoch(dataset, workers, seed=1)
        assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_seeded_items_do_not_depend_on_workers_or_order(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path, seed=5)
    items = [dataset[i][0] for i in range(len(dataset))]
    assert all(torch.equal(dataset[i][0], items[i]) for i in reversed(range(len(dataset))))
    before = torch.get_rng_state()
    dataset[0]
    assert torch.equal(before, torch.get_rng_state())  # the global RNG is left alone
    loader = DataLoader(dataset, batch_size=3, num_workers=2)
    batched = torch.cat([batch[0] for batch in loader])
    assert torch.equal(batched, torch.stack(items))
    dataset.set_epoch(1)
    assert not all(torch.equal(dataset[i][0], items[i]) for i in range(len(dataset)))


def test_cache_gives_the_same_clips(tmp_path: Path) -> None:
    plain = _dataset(tmp_path, seed=3)
    cached = ClipDataset(plain.records, clip_len=8, transform=plain.transform, seed=3, cache=True)
    assert cached.cache_bytes == 0
    cached.preload(progress=False)
    assert cached.cache_bytes == 6 * 30 * 20 * 20 * 3
    for i in range(len(plain)):
        assert torch.equal(plain[i][0], cached[i][0])


def test_worker_errors_name_the_video(tmp_path: Path) -> None:
    bad = record(tmp_path, "v_A_g01_c01.mp4")
    bad.path.parent.mkdir(parents=True)
    bad.path.write_bytes(b"garbage" * 100)
    batches = iter(DataLoader(ClipDataset([bad], clip_len=4), batch_size=1, num_workers=1))
    try:
        next(batches)
    except VideoReadError as err:  # re-raised in the main process with the worker's message
        message = str(err)
        # The traceback holds the loader in a reference cycle; a loader shut down later by
        # the garbage collector waits 5 s for its worker. Drop it and stop the worker now.
        err.__traceback__ = None
    else:
        pytest.fail("no error for an unreadable video")
    del batches
    assert f"{bad.path}: not a readable video" in message


# ----------------------------------------------------------------------------- validation


def test_validate_dataset_reports_every_bad_file(tmp_path: Path) -> None:
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "classInd.txt").write_text("1 A\n2 B\n")
    (splits / "trainlist01.txt").write_text(
        "A/v_A_g08_c01.mp4 1\nA/v_A_g08_c02.mp4 1\nB/v_B_g08_c01.avi 2\nB/v_B_g08_c02.avi 2\n"
    )
    (splits / "testlist01.txt").write_text("A/v_A_g01_c01.mp4\nB/v_B_g01_c01.avi\n")
    train = read_split(tmp_path, 1, "train")
    test = read_split(tmp_path, 1, "test")
    write_video(train[0].path, numbered_frames(20, 16, 24))
    write_video(train[1].path, numbered_frames(6, 16, 24))  # too short for 16
    train[2].path.parent.mkdir(parents=True)
    train[2].path.write_bytes(b"not a video" * 50)  # unreadable; train[3] is missing
    write_video(test[0].path, numbered_frames(30, 32, 48))
    test[1].path.write_bytes(b"")  # empty

    report = validate_dataset(tmp_path, 1, clip_len=16, progress=False)
    assert not report.ok
    assert report.counts()["train"] == {
        "listed": 4, "found": 3, "missing": 1, "unreadable": 1, "truncated": 0, "too_short": 1
    }  # fmt: skip
    assert report.counts()["total"]["unreadable"] == 2
    assert [c.record.path for c in report.missing] == [train[3].path]
    assert [c.record.path for c in report.too_short] == [train[1].path]
    assert [(c.num_frames, c.height, c.width) for c in report.readable] == [
        (20, 16, 24), (6, 16, 24), (30, 32, 48)
    ]  # fmt: skip
    text = str(report)
    for bad in (train[1], train[2], train[3], test[1]):
        assert str(bad.path) in text
    assert "file is empty" in text and "not a readable video" in text
    assert re.search(r"train\s+4\s+3\s+1\s+1\s+0\s+1", text)
    assert re.search(r"frames\s+min\s+6\s+median\s+20\s+max\s+30", text)
    assert "PROBLEMS FOUND" in text
    assert "… and 1 more" in report.format(max_listed=1)

    test[1].path.unlink()
    write_video(test[1].path, numbered_frames(16, 16, 24), lossless=True)
    train[2].path.unlink()
    write_video(train[2].path, numbered_frames(16, 16, 24), lossless=True)
    write_video(train[3].path, numbered_frames(16, 16, 24), lossless=True)
    report = validate_dataset(tmp_path, 1, clip_len=16, progress=False)
    assert report.ok and len(report.readable) == 6 and report.num_classes == 2
    assert "OK: every listed video reads" in str(report)
