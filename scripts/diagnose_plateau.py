"""Why did a pretraining run stay on its plateau? Similarities the contrastive loss sees.

For each run directory (``config.json`` + ``checkpoint.pt`` from ``pretrain``), the backbone
and centring head encode a batch of training clips in training mode (as in a training step):
the RGB clip ``a``, its view 2 ``p`` (residual frames) and its two intra-negatives
``r`` (repeat) and ``s`` (shuffle). Features are L2-normalized as the loss normalizes them.
Printed per run (means over the batch):

* ``pos``: cos(a_i, p_i), the positive pair;
* ``inter``: cos(a_i, p_j), j != i, other videos (inter-negatives);
* ``repeat`` / ``shuffle``: cos(a_i, r_i) and cos(a_i, s_i), the intra-negatives;
* ``final loss`` and the uniform loss from ``history.csv``.

A run whose ``repeat``/``shuffle`` similarity stays above ``pos`` has features that do not
see motion: its anchor is closer to its own broken copy than to its residual view.

    python scripts/diagnose_plateau.py runs/ablation/iic-repeat-s0 runs/ablation/iic-repeat-s1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from iic_helpers.checkpoint import load_checkpoint
from iic_helpers.config import Config
from iic_helpers.data.builders import clip_dataset
from iic_helpers.negatives import intra_negative
from iic_helpers.train import PretrainState, read_history, uniform_loss
from iic_helpers.views import residual


@torch.no_grad()
def similarities(run_dir: Path, n_clips: int = 64, seed: int = 0) -> dict[str, float]:
    """Mean cosine similarities (see the module docstring) for one run directory."""
    cfg = Config.from_json(run_dir / "config.json").replace(device="cpu", view2="res")
    dataset = clip_dataset(cfg, subset="train", mode="train")
    torch.manual_seed(seed)
    state = PretrainState(cfg, len(dataset), torch.device("cpu"))
    saved = load_checkpoint(run_dir / "checkpoint.pt")
    state.model.load_state_dict(saved["model"])
    state.head.load_state_dict(saved["head"])
    state.model.train()
    state.head.train()
    step = max(1, len(dataset) // n_clips)
    clips = torch.stack([dataset[i][0] for i in range(0, step * n_clips, step)])
    generator = torch.Generator().manual_seed(seed)

    def encode(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(state.encode(x), dim=1)

    a, p = encode(clips), encode(residual(clips))
    r = encode(intra_negative(clips, "repeat", generator))
    s = encode(intra_negative(clips, "shuffle", generator))
    cross = a @ p.T
    off_diagonal = ~torch.eye(len(a), dtype=torch.bool)
    history = read_history(run_dir)
    return {
        "pos": float((a * p).sum(1).mean()),
        "inter": float(cross[off_diagonal].mean()),
        "repeat": float((a * r).sum(1).mean()),
        "shuffle": float((a * s).sum(1).mean()),
        "final_loss": history[-1]["loss"],
        "uniform_loss": uniform_loss(Config.from_json(run_dir / "config.json")),
        "epochs": len(history),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="pretraining run directories")
    parser.add_argument("--clips", type=int, default=64)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(
        f"{'run':40s} {'epochs':>6s} {'loss':>6s} {'unif.':>6s} "
        f"{'pos':>6s} {'inter':>6s} {'repeat':>6s} {'shuffle':>7s}"
    )
    for run in args.runs:
        m = similarities(run, args.clips)
        print(
            f"{str(run):40s} {m['epochs']:6d} {m['final_loss']:6.2f} {m['uniform_loss']:6.2f} "
            f"{m['pos']:6.3f} {m['inter']:6.3f} {m['repeat']:6.3f} {m['shuffle']:7.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
