"""Answer check for notebook 00's coding exercise: reading one line of a UCF101 split list.

A student writes ``parse_split_line(line, classes) -> (class_name, label, group)``;
:func:`check_parse_split_line` runs it on held-out lines (other classes and groups than the
notebook's, a class name with an underscore as in HMDB51, train lines with a 1-based label
and test lines without one) and compares each answer with what
:func:`iic_helpers.data.read_split` makes of the same lines. On a mismatch it names the
likely mistake: a 1-based label, the clip number taken for the group, a group left as text,
a crash on test lines (no label), the class taken from the file name.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..data.splits import read_split

__all__ = ["HELD_OUT_CLASSES", "check_parse_split_line", "held_out_lines"]

ParseFn = Callable[[str, Sequence[str]], Any]

#: Class names in ``classInd.txt`` order for the held-out lines (none is synthetic).
HELD_OUT_CLASSES: tuple[str, ...] = ("Archery", "brush_hair", "JumpRope", "Skijet", "YoYo")

_TRAIN = (
    "brush_hair/v_brush_hair_g12_c03.avi 2",
    "YoYo/v_YoYo_g25_c07.avi 5",
    "Archery/v_Archery_g08_c01.avi 1",
    "Skijet/v_Skijet_g19_c04.avi 4",
)
_TEST = (
    "JumpRope/v_JumpRope_g03_c02.avi",
    "brush_hair/v_brush_hair_g07_c05.avi",
)


def held_out_lines() -> list[tuple[str, str, int, int]]:
    """``(line, class_name, label, group)`` as the package reads the held-out split lists.

    The lines are written to a temporary dataset root (``classInd.txt``, ``trainlist01.txt``,
    ``testlist01.txt``) and parsed with :func:`iic_helpers.data.read_split`.
    """
    with tempfile.TemporaryDirectory() as tmp:
        splits = Path(tmp) / "splits"
        splits.mkdir()
        index = "".join(f"{i} {name}\n" for i, name in enumerate(HELD_OUT_CLASSES, start=1))
        (splits / "classInd.txt").write_text(index)
        (splits / "trainlist01.txt").write_text("\n".join(_TRAIN) + "\n")
        (splits / "testlist01.txt").write_text("\n".join(_TEST) + "\n")
        records = read_split(tmp, 1, "train") + read_split(tmp, 1, "test")
    return [
        (line, r.class_name, r.label, r.group)
        for line, r in zip(_TRAIN + _TEST, records, strict=True)
    ]


def _field_mistake(line: str, answer: tuple, expected: tuple[str, int, int]) -> str | None:
    """What is wrong with one ``(class_name, label, group)`` answer, or None if right."""
    class_name, label, group = answer
    want_class, want_label, want_group = expected
    clip = int(line.split()[0].rsplit("_c", 1)[1].split(".")[0])
    if class_name != want_class:
        return (
            f"class {class_name!r} for {line!r}, expected {want_class!r}: take the folder "
            "part before '/' (class names may contain '_', e.g. brush_hair)"
        )
    if isinstance(label, bool) or not isinstance(label, int):
        return f"label {label!r} is a {type(label).__name__}; return an int"
    if label == want_label + 1:
        return (
            f"label {label} for {line!r}, expected {want_label}: classInd.txt and the train "
            "list count from 1, the package's labels from 0 (use classes.index(class_name))"
        )
    if label != want_label:
        return (
            f"label {label} for {line!r}, expected {want_label}: the label is the class's "
            "position in `classes`, counted from 0"
        )
    if isinstance(group, str):
        return f"group {group!r} is text; return it as an int (int('08') == 8)"
    if group == clip and clip != want_group:
        return (
            f"group {group} for {line!r} is the clip number (_c{clip:02d}); the group is the "
            f"number after _g ({want_group})"
        )
    if group != want_group:
        return (
            f"group {group!r} for {line!r}, expected {want_group}: read the digits after "
            "'_g' in the file name (e.g. with re.search(r'_g(\\d+)_c', line))"
        )
    return None


def check_parse_split_line(fn: ParseFn, *, verbose: bool = True) -> bool:
    """Check ``fn(line, classes) -> (class_name, label, group)`` against ``read_split``.

    Args:
        fn: the student's parser. ``line`` is one line of a UCF101-format list without its
            line ending: ``"Class/v_Class_gXX_cYY.avi <1-based label>"`` (train) or
            ``"Class/v_Class_gXX_cYY.avi"`` (test); ``classes`` lists the class names in
            ``classInd.txt`` order. It must return the class name, the 0-based label and the
            group number as an int.
        verbose: print ✓ or ✗ with the likely mistake.

    Returns:
        True when every held-out line is parsed as the package parses it.
    """
    name = getattr(fn, "__name__", "your function")

    def fail(message: str) -> bool:
        if verbose:
            print(f"✗ {name}: {message}")
        return False

    cases = held_out_lines()
    answers = []
    for line, class_name, _label, _group in cases:
        try:
            answer = fn(line, list(HELD_OUT_CLASSES))
        except NotImplementedError:
            return fail("not written yet (it raises NotImplementedError): replace that line")
        except Exception as err:  # noqa: BLE001 (the student's error is the message)
            hint = ""
            if len(line.split()) == 1:
                hint = (
                    "; test-list lines have no label: take the class from the folder name "
                    "and its label from its position in `classes`"
                )
            elif "_" in class_name:
                hint = (
                    "; class names may contain '_' (brush_hair): take the class from the "
                    "folder and the group from the digits after '_g'"
                )
            return fail(f"raised {type(err).__name__}: {err} on {line!r}{hint}")
        if not isinstance(answer, tuple | list) or len(answer) != 3:
            return fail(f"returned {answer!r} for {line!r}; return (class_name, label, group)")
        answers.append(tuple(answer))
    if len(set(answers)) == 1:
        return fail(f"the same answer {answers[0]!r} for every line: parse the line")
    for (line, *expected), answer in zip(cases, answers, strict=True):
        mistake = _field_mistake(line, answer, tuple(expected))
        if mistake:
            return fail(mistake)
    if verbose:
        print(f"✓ {name}: parses all {len(cases)} held-out lines as iic_helpers.data.read_split")
    return True
