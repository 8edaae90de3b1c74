"""A real training run, in miniature: tiny net, tiny generated covers, a few dozen steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from service.testing.images import make_catalog  # noqa: E402
from tests.training_helpers import write_hands  # noqa: E402
from training.loss import triplet_margin_loss  # noqa: E402
from training.miner import batch_hard  # noqa: E402
from training.train import Fit, FitConfig  # noqa: E402


def _config(tmp_path: Path, **kw: object) -> FitConfig:
    make_catalog(tmp_path / "cat", n=14, size=96)
    values: dict = dict(
        catalog=tmp_path / "cat", out=tmp_path / "run", arch="tiny", input_size=32, p=4, k=3,
        epochs=8, lr=3e-2, n_test=2, n_val=2, semi_hard_epochs=1, work_size=64,
        val_per_cover=1, hands=write_hands(tmp_path / "hands"), threads=1,
    )
    values.update(kw)
    return FitConfig(**values)  # type: ignore[arg-type]


def _fixed_loss(fit: Fit) -> float:
    """Batch-hard loss of one fixed PK batch, in eval mode (no BatchNorm updates)."""
    fit.views.set_epoch(123)
    idx = [i * fit.cfg.k + v for i in range(8) for v in range(fit.cfg.k)]
    x = torch.stack([fit.views[i][0] for i in idx])
    labels = torch.tensor([i // fit.cfg.k for i in idx])
    fit.model.eval()
    with torch.no_grad():
        emb = fit.model(x)
        return triplet_margin_loss(emb, batch_hard(emb, labels), fit.cfg.margin).item()


def test_fit_lowers_loss_and_writes_checkpoints_logs_split(tmp_path: Path) -> None:
    fit = Fit(_config(tmp_path))
    before = _fixed_loss(fit)
    rows = fit.run()
    after = _fixed_loss(fit)
    assert after < before * 0.8, (before, after)
    out = tmp_path / "run"
    assert len(rows) == 8 and [r["epoch"] for r in rows] == list(range(1, 9))
    assert {"loss", "val_p1", "val_p5"} <= set(rows[0])
    assert (out / "last.pt").exists() and (out / "best.pt").exists()
    assert (out / "curve.png").stat().st_size > 0
    assert len(json.loads((out / "log.json").read_text())) == 8
    assert (out / "log.csv").read_text().count("\n") == 9
    split = json.loads((out / "split.json").read_text())
    assert len(split["test"]) == 2 and len(split["val"]) == 2
    assert not set(split["train"]) & (set(split["test"]) | set(split["val"]))


def test_resume_continues_where_it_stopped(tmp_path: Path) -> None:
    cfg = _config(tmp_path, epochs=3, max_steps=7)  # 10 covers + 10 recombined: 5 steps/epoch
    first = Fit(cfg)
    first.run()
    assert first.step == 7 and first.epoch == 1  # stopped inside epoch 2
    cfg.max_steps = None
    again = Fit(cfg)
    assert (again.epoch, again.step) == (1, 7)
    for p, q in zip(first.model.parameters(), again.model.parameters(), strict=True):
        assert torch.equal(p, q)
    rows = again.run()
    assert again.epoch == 3 and [r["epoch"] for r in rows] == [1, 2, 3]


def test_deadline_stops_mid_epoch_with_a_checkpoint(tmp_path: Path) -> None:
    fit = Fit(_config(tmp_path, max_minutes=0.0))
    assert fit.run() == []
    assert fit.step == 1 and (tmp_path / "run" / "last.pt").exists()


def test_bf16_autocast_trains_and_keeps_fp32_weights(tmp_path: Path) -> None:
    fit = Fit(_config(tmp_path, bf16=True, epochs=1))
    before = [p.detach().clone() for p in fit.model.parameters()]
    rows = fit.run()
    assert len(rows) == 1 and fit.step == 5
    assert all(p.dtype == torch.float32 for p in fit.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, fit.model.parameters(), strict=True))
