"""Open-set decision: the acceptance rule; `identified`, `confidence`, `decided_by` in /identify."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from service.decision import DEFAULT, Calibration, Evidence, decide, with_overrides
from service.testing.images import new_cover_png


def _ev(**kw: object) -> Evidence:
    values: dict[str, object] = {"album_id": "a", "score": 0.9, "margin": 0.2, "inliers": 0,
                                 "coverage": 0.5, "verified": True}
    values.update(kw)
    return Evidence(**values)  # type: ignore[arg-type]


def test_verified_answer_needs_accept_inliers() -> None:
    cal = Calibration(accept_inliers=20)
    assert decide(cal, _ev(inliers=19)).identified is None
    accepted = decide(cal, _ev(inliers=20))
    assert accepted.identified == "a" and accepted.decided_by == "verified"
    assert 0 < accepted.confidence <= 1
    assert decide(cal, _ev(inliers=19)).confidence == 0.0
    # Many inliers in one corner of the cover (a shared logo or font) are not a match.
    assert decide(cal, _ev(inliers=60, coverage=0.2)).identified is None


def test_confidence_follows_measured_bins() -> None:
    cal = Calibration(accept_inliers=10, inlier_precision=[(10, 0.8), (30, 0.97)])
    assert decide(cal, _ev(inliers=12)).confidence == 0.8
    assert decide(cal, _ev(inliers=45)).confidence == 0.97


def test_gate_answers_from_embedding_only_when_calibrated() -> None:
    # The default gate is closed: a cosine never reaches 2.
    assert decide(DEFAULT, _ev(verified=False, score=0.99, margin=0.9)).identified is None
    cal = Calibration(gate_score=0.8, gate_margin=0.1, gate_precision=0.995)
    d = decide(cal, _ev(verified=False, score=0.85, margin=0.15))
    assert (d.identified, d.decided_by, d.confidence) == ("a", "embedding", 0.995)
    assert decide(cal, _ev(verified=False, score=0.85, margin=0.05)).identified is None


def test_settings_override_only_what_is_set() -> None:
    cal = with_overrides(Calibration(accept_inliers=30, gate_score=0.9), accept_inliers=12,
                         gate_score=None)
    assert (cal.accept_inliers, cal.gate_score) == (12, 0.9)


def test_identify_reports_decision_fields(client: TestClient, catalog_dir: Path) -> None:
    own = client.post("/identify", files={"image": ("c.png", (catalog_dir / "images" /
                                                              "alb-003.png").read_bytes())})
    body = own.json()
    assert body["identified"] == "alb-003" and body["decided_by"] == "verified"
    assert 0 < body["confidence"] <= 1
    assert body["matches"][0]["inliers"] >= DEFAULT.accept_inliers
    for seed in range(6):  # covers in no catalog, drawn in the same font and layout
        stranger = client.post("/identify", files={"image": ("s.png", new_cover_png(seed))})
        assert stranger.json()["identified"] is None and stranger.json()["confidence"] == 0.0
    text = client.get("/metrics").text
    assert 'cratewatch_identify_decisions_total{decided_by="verified",identified="true"}' in text
