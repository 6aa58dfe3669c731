"""Split lists: the real UCF101/HMDB51 lists shipped in data/, and HMDB51's official form."""

from __future__ import annotations

from pathlib import Path

import pytest

from iic_helpers.data.splits import (
    SplitFormatError,
    VideoRecord,
    read_classes,
    read_split,
    split_format,
)

REPO = Path(__file__).resolve().parents[1]
UCF = REPO / "data" / "ucf101"
HMDB = REPO / "data" / "hmdb51"

# Facts from the official lists (reference/recipe.json "dataset_sizes").
UCF_SIZES = {1: (9537, 3783), 2: (9586, 3734), 3: (9624, 3696)}
HMDB_SIZES = {1: (3570, 1530), 2: (3570, 1530), 3: (3570, 1530)}


@pytest.mark.parametrize(
    ("root", "sizes", "num_classes"), [(UCF, UCF_SIZES, 101), (HMDB, HMDB_SIZES, 51)]
)
def test_real_split_counts_and_labels(root: Path, sizes: dict, num_classes: int) -> None:
    assert split_format(root) == "ucf101"
    classes = read_classes(root)
    assert len(classes) == num_classes
    for split, (n_train, n_test) in sizes.items():
        train = read_split(root, split, "train")
        test = read_split(root, split, "test")
        assert (len(train), len(test)) == (n_train, n_test)
        for records in (train, test):
            assert {r.label for r in records} == set(range(num_classes))
            for r in records[:: max(1, len(records) // 500)]:
                assert classes[r.label] == r.class_name
                assert r.path == root / "videos" / r.class_name / Path(r.rel_path).name
                assert r.video_id == r.path.stem and "\r" not in r.video_id
        assert not {r.path for r in train} & {r.path for r in test}


def test_ucf101_lists_keep_crlf_and_official_details() -> None:
    raw = (UCF / "splits" / "trainlist01.txt").read_bytes()
    assert raw.count(b"\r\n") == 9537, "the shipped UCF101 lists must keep their CRLF endings"
    assert raw.startswith(b"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\n")
    train = read_split(UCF, 1, "train")
    first = train[0]
    assert first == VideoRecord(
        path=UCF / "videos" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi",
        label=0,
        class_name="ApplyEyeMakeup",
        video_id="v_ApplyEyeMakeup_g08_c01",
        rel_path="ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
        group=8,
    )
    assert first.root == UCF
    assert train[-1].class_name == "YoYo" and train[-1].label == 100
    # Split 1 tests on groups 1-7 and trains on groups 8-25.
    test = read_split(UCF, 1, "test")
    assert {r.group for r in test} == set(range(1, 8))
    assert {r.group for r in train} == set(range(8, 26))


def test_ucf101_handstand_case_difference() -> None:
    test = read_split(UCF, 1, "test")
    hand = [r for r in test if r.class_name == "HandstandPushups"]
    assert hand, "HandstandPushups has test videos"
    assert all(r.video_id.startswith("v_HandStandPushups_g") for r in hand)
    assert all(r.path.parent.name == "HandstandPushups" for r in hand)
    assert read_classes(UCF)[hand[0].label] == "HandstandPushups"


def test_hmdb51_ucf_form_has_lf_and_no_final_newline() -> None:
    raw = (HMDB / "splits" / "testlist01.txt").read_bytes()
    assert b"\r" not in raw and not raw.endswith(b"\n")
    test = read_split(HMDB, 1, "test")
    assert test[-1].path.suffix == ".avi" and test[-1].group is None
    assert read_classes(HMDB) == sorted(read_classes(HMDB))


def _write_official_hmdb(root: Path, split: int = 1) -> tuple[set, set]:
    """Turn the shipped UCF-form HMDB51 lists into the official per-class files."""
    splits = root / "splits"
    splits.mkdir(parents=True)
    train = read_split(HMDB, split, "train")
    test = read_split(HMDB, split, "test")
    per_class: dict[str, list[str]] = {}
    for records, flag in ((train, 1), (test, 2)):
        for r in records:
            per_class.setdefault(r.class_name, []).append(f"{r.path.name} {flag} ")
    for name, lines in per_class.items():
        lines.append(f"{name}_unused_clip_0.avi 0 ")  # unused videos are listed with 0
        text = "\n".join(sorted(lines)) + "\n"
        (splits / f"{name}_test_split{split}.txt").write_text(text)
    key = lambda rs: {(r.class_name, r.path.name, r.label) for r in rs}  # noqa: E731
    return key(train), key(test)


def test_hmdb51_official_form_matches_ucf_form(tmp_path: Path) -> None:
    train_key, test_key = _write_official_hmdb(tmp_path)
    assert split_format(tmp_path) == "hmdb51"
    assert read_classes(tmp_path) == read_classes(HMDB)
    train = read_split(tmp_path, 1, "train")
    test = read_split(tmp_path, 1, "test")
    assert (len(train), len(test)) == (3570, 1530)
    assert {(r.class_name, r.path.name, r.label) for r in train} == train_key
    assert {(r.class_name, r.path.name, r.label) for r in test} == test_key
    assert train[0].path == tmp_path / "videos" / "brush_hair" / train[0].path.name
    # Class by class in sorted order, each in file order.
    labels = [r.label for r in train]
    assert labels == sorted(labels)


def test_hmdb51_official_form_small(tmp_path: Path) -> None:
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "wave_test_split2.txt").write_text("w_b.avi 2 \nw_a.avi 1 \r\nw_c.avi 0\n")
    (splits / "clap_test_split2.txt").write_text("c_a.avi 1\nc_b.avi 1\n")
    train = read_split(tmp_path, 2, "train")
    assert [(r.class_name, r.label, r.video_id) for r in train] == [
        ("clap", 0, "c_a"),
        ("clap", 0, "c_b"),
        ("wave", 1, "w_a"),
    ]
    assert [r.video_id for r in read_split(tmp_path, 2, "test")] == ["w_b"]
    with pytest.raises(FileNotFoundError, match="split 1"):
        read_split(tmp_path, 1, "train")
    (splits / "wave_test_split2.txt").write_text("w_a.avi 1\nw_b.avi 3\n")
    with pytest.raises(SplitFormatError, match=r"wave_test_split2\.txt, line 2"):
        read_split(tmp_path, 2, "train")


def _ucf_root(tmp_path: Path, train: str, test: str = "A/v_A_g01_c01.avi\n") -> Path:
    splits = tmp_path / "splits"
    splits.mkdir(parents=True, exist_ok=True)
    (splits / "classInd.txt").write_bytes(b"1 A\r\n2 B\r\n")
    (splits / "trainlist01.txt").write_text(train)
    (splits / "testlist01.txt").write_text(test)
    return tmp_path


def test_ucf_form_errors_name_file_and_line(tmp_path: Path) -> None:
    root = _ucf_root(tmp_path, "A/v_A_g08_c01.avi 1\nB/v_B_g08_c01.avi 1\n")
    with pytest.raises(SplitFormatError, match=r"trainlist01\.txt, line 2: label 1 disagrees"):
        read_split(root, 1, "train")
    _ucf_root(tmp_path, "A/v_A_g08_c01.avi 1\nC/v_C_g08_c01.avi\n")
    with pytest.raises(SplitFormatError, match=r"line 2: class 'C' is not in"):
        read_split(root, 1, "train")
    _ucf_root(tmp_path, "A/v_A_g08_c01.avi one\n")
    with pytest.raises(SplitFormatError, match=r"trainlist01\.txt, line 1"):
        read_split(root, 1, "train")
    _ucf_root(tmp_path, "v_A_g08_c01.avi 1\n")
    with pytest.raises(SplitFormatError, match="no class folder"):
        read_split(root, 1, "train")
    _ucf_root(tmp_path, "\n\nB/v_B_g08_c01.avi 2\n\n")  # blank lines are skipped
    assert [r.label for r in read_split(root, 1, "train")] == [1]
    (tmp_path / "splits" / "testlist01.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"testlist01\.txt"):
        read_split(root, 1, "test")
    (tmp_path / "splits" / "classInd.txt").write_text("1 A\n3 B\n")
    with pytest.raises(SplitFormatError, match=r"classInd\.txt"):
        read_split(root, 1, "train")


def test_bad_arguments_and_missing_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="subset"):
        read_split(UCF, 1, "val")
    with pytest.raises(ValueError, match="split"):
        read_split(UCF, 0, "train")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "splits")):
        read_split(tmp_path, 1, "train")
    assert len(read_split(UCF, "2", "test")) == 3734
