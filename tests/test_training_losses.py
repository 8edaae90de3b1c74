"""PK sampler, miners and triplet loss against triplets and values worked out by hand."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from training.loss import triplet_margin_loss  # noqa: E402
from training.miner import batch_hard, semi_hard  # noqa: E402
from training.sampler import PKSampler  # noqa: E402

# Four points on a line (as 2-d rows): labels 0,0,1,1 at x = 0, 0.5, 0.6, 2.0.
# Distances: d01=.5 d02=.6 d03=2 d12=.1 d13=1.5 d23=1.4
EMB = torch.tensor([[0.0, 0.0], [0.5, 0.0], [0.6, 0.0], [2.0, 0.0]])
LABELS = torch.tensor([0, 0, 1, 1])


def _as_set(trip: tuple) -> set[tuple[int, ...]]:
    return {tuple(int(v) for v in t) for t in zip(*trip, strict=True)}


def test_batch_hard_picks_farthest_positive_nearest_negative() -> None:
    assert _as_set(batch_hard(EMB, LABELS)) == {(0, 1, 2), (1, 0, 2), (2, 3, 1), (3, 2, 1)}


def test_batch_hard_skips_anchors_without_positive() -> None:
    emb = torch.cat([EMB, torch.tensor([[5.0, 0.0]])])
    labels = torch.tensor([0, 0, 1, 1, 2])
    a, _, _ = batch_hard(emb, labels)
    assert 4 not in a.tolist() and len(a) == 4


def test_semi_hard_keeps_negatives_inside_the_margin_only() -> None:
    # (0,1): d_ap=.5, negative 2 at .6 is in (.5,.7)   -> kept
    # (1,0): negatives at .1 and 1.5                   -> none
    # (2,3): d_ap=1.4, negatives at .6 and .1          -> none
    # (3,2): d_ap=1.4, negatives at 2.0 and 1.5 -> 1.5 in (1.4,1.6) -> kept
    assert _as_set(semi_hard(EMB, LABELS, margin=0.2)) == {(0, 1, 2), (3, 2, 1)}


def test_triplet_loss_value_by_hand() -> None:
    # relu(.5-.6+.2)=.1, relu(.5-.1+.2)=.6, relu(1.4-.1+.2)=1.5, relu(1.4-1.5+.2)=.1 -> 2.3/4
    loss = triplet_margin_loss(EMB, batch_hard(EMB, LABELS), margin=0.2)
    assert loss.item() == pytest.approx(0.575, abs=1e-5)
    semi = triplet_margin_loss(EMB, semi_hard(EMB, LABELS, 0.2), margin=0.2)
    assert semi.item() == pytest.approx(0.1, abs=1e-5)


def test_loss_without_triplets_is_zero_and_differentiable() -> None:
    emb = EMB.clone().requires_grad_(True)
    empty = torch.zeros(0, dtype=torch.long)
    loss = triplet_margin_loss(emb, (empty, empty, empty), 0.2)
    loss.backward()
    assert loss.item() == 0.0 and emb.grad is not None


def test_loss_gradient_pulls_positive_pushes_negative() -> None:
    emb = EMB.clone().requires_grad_(True)
    triplet_margin_loss(emb, (torch.tensor([0]), torch.tensor([1]), torch.tensor([2])), 0.2
                        ).backward()
    assert emb.grad is not None
    assert emb.grad[1, 0] > 0  # descent moves the positive (x=.5) towards the anchor (x=0)
    assert emb.grad[2, 0] < 0  # and the negative (x=.6) away from it


def test_pk_sampler_shapes_and_labels() -> None:
    sampler = PKSampler(n_identities=10, p=4, k=3, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 2
    seen: set[int] = set()
    for b in batches:
        assert len(b) == 12
        ids = [i // 3 for i in b]
        views = [i % 3 for i in b]
        assert len(set(ids)) == 4 and all(ids.count(x) == 3 for x in set(ids))
        assert sorted(views) == [0] * 4 + [1] * 4 + [2] * 4  # every identity's clean view too
        seen |= set(ids)
    assert len(seen) == 8  # no identity twice in an epoch
    sampler.set_epoch(1)
    assert list(sampler) != batches
    sampler.set_epoch(0)
    assert list(sampler) == batches


def test_pk_sampler_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        PKSampler(10, p=4, k=1)
    with pytest.raises(ValueError):
        PKSampler(3, p=4, k=2)
