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
        epochs=8, lr=3e-2, n_test=2, n_val=2, n_ood_val=2, semi_hard_epochs=1, work_size=64,
        val_per_cover=1, ood_val_per_cover=1, hands=write_hands(tmp_path / "hands"), threads=1,
        synth="classic",
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
    assert {"loss", "val_p1", "val_p5", "ood_p1", "ood_p5", "ood_loose_p1", "ood_medium_p1",
            "select"} <= set(rows[0])
    assert (out / "last.pt").exists() and (out / "best.pt").exists()
    assert (out / "curve.png").stat().st_size > 0
    assert len(json.loads((out / "log.json").read_text())) == 8
    assert (out / "log.csv").read_text().count("\n") == 9
    split = json.loads((out / "split.json").read_text())
    assert len(split["test"]) == 2 and len(split["val"]) == 2 and len(split["ood_val"]) == 2
    assert not set(split["train"]) & (set(split["test"]) | set(split["val"])
                                      | set(split["ood_val"]))
    best = torch.load(out / "best.pt", weights_only=False)
    assert best["best"] == max(r["select"] for r in rows)  # selected by OOD validation


def test_resume_continues_the_schedule_exactly(tmp_path: Path) -> None:
    """Stop inside epoch 2, resume: same epoch, batch, LR schedule, sampler order and so the
    same weights and log as a run that was never interrupted."""
    # 8 covers + 8 recombined identities, P=4: 4 steps per epoch
    whole = Fit(_config(tmp_path / "a", epochs=3))
    whole_rows = whole.run()
    cfg = _config(tmp_path / "b", epochs=3, max_steps=6)
    first = Fit(cfg)
    first.run()
    assert (first.epoch, first.batch, first.step) == (1, 2, 6)  # inside epoch 2
    cfg.max_steps = None
    again = Fit(cfg)
    assert (again.epoch, again.batch, again.step) == (1, 2, 6)
    assert again.opt.param_groups[0]["lr"] == first.opt.param_groups[0]["lr"]
    rows = again.run()
    assert again.epoch == 3 and [r["epoch"] for r in rows] == [1, 2, 3]
    for p, q in zip(whole.model.parameters(), again.model.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    assert [r["lr"] for r in rows] == [r["lr"] for r in whole_rows]
    assert [r["ood_p1"] for r in rows] == [r["ood_p1"] for r in whole_rows]


def test_deadline_stops_mid_epoch_with_a_checkpoint(tmp_path: Path) -> None:
    fit = Fit(_config(tmp_path, max_minutes=0.0))
    assert fit.run() == []
    assert fit.step == 1 and (tmp_path / "run" / "last.pt").exists()


def test_bf16_autocast_trains_and_keeps_fp32_weights(tmp_path: Path) -> None:
    fit = Fit(_config(tmp_path, bf16=True, epochs=1))
    before = [p.detach().clone() for p in fit.model.parameters()]
    rows = fit.run()
    assert len(rows) == 1 and fit.step == 4
    assert all(p.dtype == torch.float32 for p in fit.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, fit.model.parameters(), strict=True))


def test_checkpoint_carries_the_model_contract(tmp_path: Path) -> None:
    fit = Fit(_config(tmp_path, epochs=1, channels=3))
    fit.run()
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert ck["info"]["channels"] == 3 and ck["info"]["input_size"] == 32
    assert ck["info"]["mean"] == [0.485, 0.456, 0.406] and ck["info"]["embedding_dim"] == 128
    assert ck["sampler"] == {"epoch": 1, "batch": 0, "seed": 0}


def test_fit_cli_options_come_from_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    from training.cli import main
    from training.config import FitConfig

    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = capsys.readouterr().out
    for f in dataclasses.fields(FitConfig):
        flag = ("--no-" if f.default is True else "--") + f.name.replace("_", "-")
        assert flag in text, flag
    assert "OOD-validation albums" in text and "(default: 128)" in text


def test_fit_with_domain_randomised_synthesis(tmp_path: Path) -> None:
    fit = Fit(_config(tmp_path, epochs=1, synth="wide", generated_factor=0.5, channels=3))
    assert len(fit.views.covers) == 8 + 8 + 4  # train + recombined + generated identities
    rows = fit.run()
    assert len(rows) == 1 and rows[0]["loss"] > 0


def test_classic_recipe_without_ood_validation_selects_by_id(tmp_path: Path) -> None:
    rows = Fit(_config(tmp_path, epochs=1, n_ood_val=0)).run()
    assert "ood_p1" not in rows[0] and rows[0]["select"] == rows[0]["val_p1"]


def test_mid_epoch_checkpoints_resume_at_their_batch(tmp_path: Path) -> None:
    fit = Fit(_config(tmp_path, epochs=1, checkpoint_minutes=0.0))  # save after every step
    saves: list[tuple[str, int, int]] = []
    real = fit._save

    def spy(name: str) -> None:
        saves.append((name, fit.epoch, fit.batch))
        real(name)

    fit._save = spy  # type: ignore[method-assign]
    fit.run()
    # 4 steps: mid-epoch saves after batches 1-3, then the epoch-end best/last
    assert saves[:3] == [("last.pt", 0, 1), ("last.pt", 0, 2), ("last.pt", 0, 3)]
    assert saves[3:] == [("best.pt", 1, 0), ("last.pt", 1, 0)]


def test_init_from_takes_weights_only_and_refuses_another_contract(tmp_path: Path) -> None:
    """A continuation starts from the source run's weights with a fresh optimiser, step and
    schedule; a checkpoint of another contract (channels, dim, arch) is refused."""
    src = Fit(_config(tmp_path / "a", epochs=1))
    src.run()
    cont = Fit(_config(tmp_path / "b", epochs=1, init_from=tmp_path / "a" / "run" / "last.pt",
                       wide_share=1.0, synth="wide"))
    for p, q in zip(src.model.parameters(), cont.model.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    assert (cont.epoch, cont.step, cont.best) == (0, 0, -1.0) and cont.views.wide_share == 1.0
    assert len(cont.run()) == 1 and cont.step == 4  # a whole new epoch under its own schedule
    with pytest.raises(ValueError, match="channels"):
        Fit(_config(tmp_path / "c", channels=3, init_from=tmp_path / "a" / "run" / "last.pt"))


def test_a_paused_step_is_charged_the_typical_step_time() -> None:
    """SIGSTOP (benchmarks/quiet.sh) must not eat a run's training budget; slow steps count."""
    from training.train import PAUSED_FACTOR, charged_seconds

    recent = [1.0, 1.2, 0.9, 1.1, 1.0]
    assert charged_seconds(240.0, recent) == 1.0  # paused for 4 minutes: the median
    assert charged_seconds(3.5, recent) == 3.5  # contended, but computing: as measured
    assert charged_seconds(PAUSED_FACTOR * 1.0, recent) == PAUSED_FACTOR  # the boundary counts
    assert charged_seconds(240.0, recent[:3]) == 240.0  # too few steps to judge
