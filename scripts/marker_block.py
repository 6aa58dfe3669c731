"""Replace the generated part of a document: the text between two marker comments.

Used by the scripts that keep a table in README.md or INSTRUCTORS.md in step with the
committed result files (``tutorial_times.py``, ``instructors_table.py``).
"""

from __future__ import annotations


def replace_between(text: str, begin: str, end: str, new: str, *, what: str) -> str:
    """``text`` with the part between the lines ``begin`` and ``end`` replaced by ``new``.

    ``what`` names the document in the error raised when a marker is missing.

    >>> replace_between("a\\n<b>\\nold\\n<e>\\nz", "<b>", "<e>", "new", what="doc")
    'a\\n<b>\\nnew\\n<e>\\nz'
    """
    if begin not in text or end not in text:
        raise SystemExit(f"{what} lacks the markers {begin!r} / {end!r}: restore them")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{new}\n{end}{tail}"
