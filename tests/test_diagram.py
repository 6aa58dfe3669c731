"""The pipeline diagram of notebook 02 draws, and follows the values it is given."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from iic_helpers.diagram import draw_iic_pipeline  # noqa: E402


def _texts(fig: plt.Figure) -> str:
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_pipeline_diagram_draws_the_presets_values() -> None:
    fig = draw_iic_pipeline(k=64, temperature=0.2, momentum=0.0)
    text = _texts(fig)
    for piece in (
        "anchor",
        "positive",
        "intra-negative",
        "shared\n3D CNN",
        "memory banks",
        "130 scores",
        "τ = 0.2",
        "momentum 0.0",
        "centre + L2-normalize",
        "with gradient",
    ):
        assert piece in text, piece
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=40)
    assert png.getvalue()[:4] == b"\x89PNG" and len(png.getvalue()) > 5000
    plt.close(fig)


def test_pipeline_diagram_in_the_papers_setting() -> None:
    fig = draw_iic_pipeline(normalized=False, centered=False, negative_gradient=False)
    text = _texts(fig)
    assert "2k+2 scores" in text and "as they come" in text and "(stored row)" in text
    assert "with gradient" not in text
    plt.close(fig)
