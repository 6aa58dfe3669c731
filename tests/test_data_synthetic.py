"""Tests for the synthetic motion dataset and the single-frame / motion baselines."""

from __future__ import annotations

import inspect
import json
import re
import time
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from iic_helpers.data.motion_baselines import (
    MOTION_FEATURE_NAMES,
    compare_baselines,
    linear_probe_accuracy,
    motion_features,
    single_frame_features,
)
from iic_helpers.data.synthetic import (
    SYNTHETIC_CLASSES,
    SYNTHETIC_VERSION,
    make_synthetic_dataset,
    render_synthetic_video,
    synthetic_video_name,
)

# A small dataset: 10 classes x 3 groups (group 1 = test) x 2 clips, 8 frames of 32x32.
SMALL = {
    "n_groups": 3,
    "test_groups": 1,
    "clips_per_group": 2,
    "num_frames": 8,
    "size": 32,
}
NAME = re.compile(r"^(\w+)/v_(\w+)_g(\d\d)_c(\d\d)\.mp4$")
PAIRS = [
    ("MoveRight", "MoveLeft"),
    ("MoveUp", "MoveDown"),
    ("RotateClockwise", "RotateCounterclockwise"),
    ("Grow", "Shrink"),
]


def decode(path: Path) -> np.ndarray:
    """All frames of a video as uint8 ``(T, H, W, 3)``."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def split_lines(root: Path, name: str) -> list[str]:
    raw = (root / "splits" / name).read_bytes()
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF, as UCF101
    return raw.decode().splitlines()


def luma_psnr(decoded: np.ndarray, source: np.ndarray) -> float:
    weights = np.array([0.299, 0.587, 0.114])
    err = (decoded.astype(np.float64) - source) @ weights
    return float(10 * np.log10(255.0**2 / np.mean(err**2)))


def rgb_psnr(decoded: np.ndarray, source: np.ndarray) -> float:
    err = decoded.astype(np.float64) - source
    return float(10 * np.log10(255.0**2 / np.mean(err**2)))


@pytest.fixture(scope="module")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_dataset(tmp_path_factory.mktemp("synthetic") / "root", **SMALL)


# ----------------------------------------------------------------------------- layout


def test_split_files_follow_ucf101_format(small_root: Path) -> None:
    classes = split_lines(small_root, "classInd.txt")
    assert classes == [f"{i} {name}" for i, name in enumerate(SYNTHETIC_CLASSES, start=1)]

    train = split_lines(small_root, "trainlist01.txt")
    test = split_lines(small_root, "testlist01.txt")
    assert len(train) == 10 * 2 * 2 and len(test) == 10 * 1 * 2

    train_groups, test_groups = set(), set()
    for line in train:
        rel, label = line.split(" ")
        folder, cls, group, _ = NAME.match(rel).groups()
        assert folder == cls and int(label) == SYNTHETIC_CLASSES.index(cls) + 1  # 1-based
        train_groups.add(int(group))
    for line in test:
        assert " " not in line  # no label in test lists
        test_groups.add(int(NAME.match(line).group(3)))
    assert test_groups == {1} and train_groups == {2, 3}

    listed = {line.split(" ")[0] for line in train + test}
    on_disk = {p.relative_to(small_root / "videos").as_posix() for p in small_root.rglob("*.mp4")}
    assert listed == on_disk


def test_default_counts_meet_the_design() -> None:
    # The default dataset is not generated here (10 s); its split lists are cheap to count.
    # The defaults are read from the function itself, so changing one is seen here.
    import inspect

    from iic_helpers.data.synthetic import _check_options, _video_jobs

    checked = inspect.signature(_check_options).parameters
    defaults = {
        name: p.default
        for name, p in inspect.signature(make_synthetic_dataset).parameters.items()
        if name in checked and p.default is not inspect.Parameter.empty
    }
    assert set(defaults) == set(checked)  # every option the checker takes has a default
    opts = _check_options(**defaults)
    jobs = list(_video_jobs(opts))
    test = [j for j in jobs if j[1] <= 7]
    assert len(opts.classes) >= 6 and len(jobs) - len(test) >= 100 and len(test) >= 30


def test_manifest_records_options(small_root: Path) -> None:
    manifest = json.loads((small_root / "synthetic.json").read_text())
    assert manifest["complete"] is True
    assert manifest["options"]["n_groups"] == 3 and manifest["options"]["height"] == 32
    assert manifest["counts"] == {"classes": 10, "train": 40, "test": 20}


# ----------------------------------------------------------------------------- videos


def test_videos_decode_to_expected_shape(small_root: Path) -> None:
    paths = sorted((small_root / "videos").rglob("*.mp4"))
    assert len(paths) == 60
    for path in paths[::7]:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert stream.codec_context.pix_fmt == "yuv420p"
        assert decode(path).shape == (8, 32, 32, 3)


def test_compression_keeps_quality(small_root: Path) -> None:
    luma, rgb = [], []
    for cls in SYNTHETIC_CLASSES:
        path = small_root / "videos" / synthetic_video_name(cls, 2, 1)
        source = render_synthetic_video(cls, group=2, clip=1, num_frames=8, size=32)
        luma.append(luma_psnr(decode(path), source))
        rgb.append(rgb_psnr(decode(path), source))
    # Luma carries the codec's error; RGB adds the 4:2:0 chroma subsampling of sharp colour
    # edges, which is the lower of the two (measured: median ~38 dB on the default set).
    assert min(luma) > 35.0
    assert np.median(rgb) > 33.0


def test_same_seed_gives_identical_files(tmp_path: Path, small_root: Path) -> None:
    again = make_synthetic_dataset(tmp_path / "again", **SMALL)
    for path in sorted(small_root.rglob("*.mp4"))[::5]:
        twin = again / path.relative_to(small_root)
        np.testing.assert_array_equal(decode(path), decode(twin))
        assert path.read_bytes() == twin.read_bytes()  # x264 single-threaded, no mbtree
    for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        assert (again / "splits" / name).read_bytes() == (small_root / "splits" / name).read_bytes()


def test_seed_and_group_change_appearance() -> None:
    def grow(group: int, seed: int) -> np.ndarray:
        return render_synthetic_video("Grow", group=group, seed=seed, num_frames=4, size=32)

    a = grow(2, 0)
    assert not np.array_equal(a, grow(2, 1))
    assert not np.array_equal(a, grow(3, 0))
    np.testing.assert_array_equal(a, grow(2, 0))


def test_options_subset_size_and_container(tmp_path: Path) -> None:
    root = make_synthetic_dataset(
        tmp_path / "r",
        n_groups=2,
        test_groups=1,
        clips_per_group=1,
        num_frames=4,
        size=(32, 48),
        classes=["Shrink", "MoveLeft"],  # labels follow the canonical order
        ext="avi",
    )
    assert split_lines(root, "classInd.txt") == ["1 MoveLeft", "2 Shrink"]
    assert split_lines(root, "trainlist01.txt") == [
        "MoveLeft/v_MoveLeft_g02_c01.avi 1",
        "Shrink/v_Shrink_g02_c01.avi 2",
    ]
    assert sorted(p.name for p in (root / "videos").iterdir()) == ["MoveLeft", "Shrink"]
    assert decode(root / "videos" / "Shrink" / "v_Shrink_g01_c01.avi").shape == (4, 32, 48, 3)


# ----------------------------------------------------------------------------- re-runs


def test_rerun_with_same_options_skips(small_root: Path) -> None:
    video = small_root / "videos" / synthetic_video_name("Blink", 1, 1)
    before = video.stat().st_mtime_ns
    start = time.perf_counter()
    assert make_synthetic_dataset(small_root, **SMALL) == small_root
    assert time.perf_counter() - start < 1.0
    assert video.stat().st_mtime_ns == before


def test_other_options_need_overwrite(tmp_path: Path) -> None:
    opts = {"n_groups": 2, "test_groups": 1, "clips_per_group": 1, "num_frames": 4, "size": 16}
    root = make_synthetic_dataset(tmp_path / "r", classes=["Grow", "Blink"], **opts)
    with pytest.raises(FileExistsError, match="seed: 0 -> 1.*overwrite=True"):
        make_synthetic_dataset(root, classes=["Grow", "Blink"], seed=1, **opts)
    make_synthetic_dataset(root, classes=["Grow", "Shrink"], overwrite=True, **opts)
    assert not (root / "videos" / "Blink").exists()
    assert split_lines(root, "classInd.txt") == ["1 Grow", "2 Shrink"]


def test_interrupted_or_damaged_dataset_is_rebuilt(tmp_path: Path) -> None:
    opts = {"n_groups": 2, "test_groups": 1, "clips_per_group": 1, "num_frames": 4, "size": 16,
            "classes": ["Grow", "Blink"]}  # fmt: skip
    root = make_synthetic_dataset(tmp_path / "r", **opts)
    video = root / "videos" / synthetic_video_name("Grow", 2, 1)
    video.unlink()
    make_synthetic_dataset(root, **opts)  # same options, a video missing: rebuilt
    assert video.is_file()
    manifest = json.loads((root / "synthetic.json").read_text())
    manifest["complete"] = False
    (root / "synthetic.json").write_text(json.dumps(manifest))
    make_synthetic_dataset(root, **{**opts, "seed": 5})  # incomplete: rebuilt without asking
    assert json.loads((root / "synthetic.json").read_text())["options"]["seed"] == 5
    manifest = json.loads((root / "synthetic.json").read_text())
    manifest["options"]["version"] = 0
    (root / "synthetic.json").write_text(json.dumps(manifest))
    make_synthetic_dataset(root, **{**opts, "seed": 5})  # older generator: rebuilt
    assert json.loads((root / "synthetic.json").read_text())["options"]["version"] > 0


def test_foreign_directory_is_never_touched(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not made by make_synthetic_dataset"):
        make_synthetic_dataset(tmp_path, overwrite=True, **SMALL)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": 33}, "even"),
        ({"size": (32, 30, 3)}, "height, width"),
        ({"size": 8}, "at least 16"),
        ({"n_groups": 7}, "no training group"),
        ({"n_groups": 100}, "at most 99"),
        ({"test_groups": 0}, "test_groups"),
        ({"clips_per_group": 0}, "clips_per_group"),
        ({"num_frames": 1}, "num_frames"),
        ({"classes": ["Jump"]}, "unknown classes"),
        ({"classes": ["Grow"]}, "at least 2 classes"),
        ({"classes": "Grow"}, "not a single string"),
        ({"classes": ["Grow", "Grow"]}, "duplicates"),
        ({"ext": "webm"}, "ext"),
        ({"crf": 60}, "crf"),
        ({"noise": -0.1}, "noise"),
        ({"distractors": -1}, "distractors"),
    ],
)
def test_bad_options_raise(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_synthetic_dataset(tmp_path / "r", **options)
    assert not (tmp_path / "r").exists()  # checked before anything is written


def test_render_rejects_unknown_class() -> None:
    with pytest.raises(ValueError, match="unknown class"):
        render_synthetic_video("Spin")


# ----------------------------------------------------------------------------- motion only


@pytest.mark.parametrize(("forward", "backward"), PAIRS)
def test_paired_classes_are_time_reversals(forward: str, backward: str) -> None:
    a = render_synthetic_video(forward, group=4, clip=2, num_frames=12, size=32)
    b = render_synthetic_video(backward, group=4, clip=2, num_frames=12, size=32)
    np.testing.assert_array_equal(a, b[::-1])


def test_classes_share_appearance_but_not_motion(small_root: Path) -> None:
    # On the encoded files: the time-averaged frame of two classes of one group is the same
    # up to codec noise (appearance cannot tell them apart), while their motion, measured
    # from frame differences, points the opposite way.
    def video(cls: str, group: int) -> np.ndarray:
        return decode(small_root / "videos" / synthetic_video_name(cls, group, 1)).astype(float)

    direction = {"MoveRight": 0, "MoveUp": 1, "RotateClockwise": 3, "Grow": 2}
    for forward, backward in PAIRS:
        a, b = video(forward, 2), video(backward, 2)
        same_group = np.abs(a.mean(axis=0) - b.mean(axis=0)).mean()
        other_group = np.abs(a.mean(axis=0) - video(forward, 3).mean(axis=0)).mean()
        assert same_group < 3.0 and same_group < 0.2 * other_group  # grey levels of 255
        fa, fb = motion_features([a, b], downsample=1)[:, direction[forward]]
        assert fa * fb < 0 and min(abs(fa), abs(fb)) > 0.01


def test_class_names_match_the_motion() -> None:
    videos = [render_synthetic_video(c, group=9, num_frames=24, size=48) for c in SYNTHETIC_CLASSES]
    f = dict(zip(SYNTHETIC_CLASSES, motion_features(videos), strict=True))
    col = {name: i for i, name in enumerate(MOTION_FEATURE_NAMES)}
    vx, vy, div, curl = (col[k] for k in ("median_vx", "median_vy", "median_div", "median_curl"))
    assert f["MoveRight"][vx] > 0.5 and f["MoveLeft"][vx] < -0.5
    assert f["MoveDown"][vy] > 0.5 and f["MoveUp"][vy] < -0.5  # image y points down
    assert f["RotateClockwise"][curl] > 0.02 and f["RotateCounterclockwise"][curl] < -0.02
    assert f["Grow"][div] > 0.01 and f["Shrink"][div] < -0.01
    assert f["Oscillate"][col["reversals"]] > 0.1
    assert f["Blink"][col["calm_fraction"]] > 0.4
    assert max(f[c][col["calm_fraction"]] for c in SYNTHETIC_CLASSES[:6]) < 0.2


def test_motion_features_beat_single_frames() -> None:
    def videos(groups: range) -> tuple[list[np.ndarray], np.ndarray]:
        clips = [(c, g) for g in groups for c in range(len(SYNTHETIC_CLASSES))]
        frames = [
            render_synthetic_video(SYNTHETIC_CLASSES[c], group=g, num_frames=16, size=32)
            for c, g in clips
        ]
        return frames, np.array([c for c, _ in clips])

    train_x, train_y = videos(range(8, 14))
    test_x, test_y = videos(range(1, 4))
    result = compare_baselines(train_x, train_y, test_x, test_y, downsample=1)
    assert result["chance"] == pytest.approx(0.1)
    assert result["motion"] >= 0.8
    assert result["single_frame"] <= 0.35
    assert result["motion"] - result["single_frame"] >= 0.5


def test_baseline_inputs_accept_both_layouts() -> None:
    video = render_synthetic_video("MoveDown", group=2, num_frames=6, size=32)
    batch = np.stack([video, video[::-1]])  # (N, T, H, W, C) uint8
    clips = torch.from_numpy(batch).permute(0, 4, 1, 2, 3).float() / 255  # (N, C, T, H, W)
    np.testing.assert_allclose(
        motion_features(batch), motion_features(clips, channels_first=True), atol=1e-4
    )
    np.testing.assert_allclose(
        single_frame_features(batch, grid=4),
        single_frame_features(clips, grid=4, channels_first=True),
        atol=1e-6,
    )
    assert single_frame_features(batch, grid=4).shape == (2, 48)
    assert motion_features(batch).shape == (2, len(MOTION_FEATURE_NAMES))
    with pytest.raises(ValueError, match="at least 3 frames"):
        motion_features(batch[:, :2])
    with pytest.raises(ValueError, match="shape"):
        motion_features(batch[0])


def test_linear_probe_accuracy_on_separable_data() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    x = rng.normal(size=(60, 4)) * 0.1 + np.eye(4)[y]
    assert linear_probe_accuracy(x[::2], y[::2], x[1::2], y[1::2]) == 1.0
    with pytest.raises(ValueError, match="same length"):
        linear_probe_accuracy(x, y[:-1], x, y)


def _reference_for(root: Path, tmp_path: Path, change: str | None = None) -> Path:
    """A reference file for the set in ``root`` (one digest changed if ``change``)."""
    from iic_helpers.data.synthetic_reference import video_digests

    digests = video_digests(root)
    if change is not None:
        digests[change] = "0" * 64
    options = json.loads((root / "synthetic.json").read_text())["options"]
    path = tmp_path / "reference.json"
    path.write_text(json.dumps({"made_on": "a test CPU", "options": options, "sha256": digests}))
    return path


def test_a_set_unlike_the_reference_warns_naming_its_videos(tmp_path: Path) -> None:
    from iic_helpers.data.synthetic_reference import SyntheticDataWarning, warn_if_not_reference

    root = make_synthetic_dataset(
        tmp_path / "s", n_groups=2, clips_per_group=1, test_groups=1, num_frames=8, size=32
    )
    options = json.loads((root / "synthetic.json").read_text())["options"]
    same = _reference_for(root, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_if_not_reference(root, options, same) == []
    changed = _reference_for(root, tmp_path, change="Blink/v_Blink_g01_c01.mp4")
    with pytest.warns(
        SyntheticDataWarning, match=r"1 of 20 videos .*\(a test CPU\).*v_Blink_g01_c01"
    ):
        assert warn_if_not_reference(root, options, changed) == ["Blink/v_Blink_g01_c01.mp4"]
    other = {**options, "seed": options["seed"] + 1}
    assert warn_if_not_reference(root, other, changed) is None  # other options: not compared


def test_the_reference_lists_exactly_the_default_sets_videos() -> None:
    from iic_helpers.data.synthetic_reference import REFERENCE

    reference = json.loads(REFERENCE.read_text())
    default = {
        k: p.default for k, p in inspect.signature(make_synthetic_dataset).parameters.items()
    }
    options = reference["options"]
    assert (options["height"], options["width"]) == (default["size"], default["size"])
    assert options["classes"] == list(SYNTHETIC_CLASSES) and options["version"] == SYNTHETIC_VERSION
    for key in ("n_groups", "clips_per_group", "num_frames", "seed", "test_groups", "ext", "crf"):
        assert options[key] == default[key], key
    names = {
        synthetic_video_name(c, g, k, default["ext"])
        for c in SYNTHETIC_CLASSES
        for g in range(1, default["n_groups"] + 1)
        for k in range(1, default["clips_per_group"] + 1)
    }
    assert set(reference["sha256"]) == names and len(names) == 500


def test_a_non_default_set_records_no_reference_comparison(tmp_path: Path) -> None:
    """Only the default options are compared: a small set's manifest has no such entry."""
    root = make_synthetic_dataset(
        tmp_path / "s", n_groups=2, clips_per_group=1, test_groups=1, num_frames=8, size=32
    )
    assert "differs_from_reference" not in json.loads((root / "synthetic.json").read_text())
