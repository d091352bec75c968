"""Attribution baselines and the generic faithfulness harness, on a toy predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from protscramble.baselines import (
    GradientSaliency,
    GradientXInput,
    InSilicoMutagenesis,
    IntegratedGradients,
    RandomImportance,
    predicted_class_log_probability,
)
from protscramble.errors import InvalidParameterError
from protscramble.explanation import Explanation
from protscramble.faithfulness import (
    average_precision,
    evaluate_faithfulness,
    resampling_pssm,
    roc_auc,
    top_fraction_mask,
)

KEY = 2  # the only position the toy predictor reads
LENGTH, ALPHA = 8, 4


class Toy:
    """Two-class predictor that only looks at position KEY: class 1 iff letter 0 is there."""

    alphabet = "ABCD"

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logit = 6.0 * x[:, KEY, 0] - 3.0 + 0.1 * x[:, :, 1].sum(-1)  # a faint signal elsewhere
        p = torch.sigmoid(logit)
        return {"y": torch.stack([1 - p, p], -1).unsqueeze(1)}


def toy_inputs(b: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(1, ALPHA, (b, LENGTH), generator=gen)
    idx[:, KEY] = 0
    x = torch.nn.functional.one_hot(idx, ALPHA).float()
    x[:, -1] = 0.0  # one padding row
    mask = torch.ones(b, LENGTH, dtype=torch.bool)
    mask[:, -1] = False
    return x, mask


@pytest.mark.parametrize(
    "method",
    [
        lambda p: GradientSaliency(p),
        lambda p: GradientXInput(p),
        lambda p: IntegratedGradients(p, n_steps=16),
        lambda p: InSilicoMutagenesis(p),
        lambda p: InSilicoMutagenesis(p, reduction="max"),
    ],
    ids=["saliency", "gradient_x_input", "integrated_gradients", "ism_mean", "ism_max"],
)
def test_baselines_find_the_key_position(method) -> None:  # noqa: ANN001
    x, mask = toy_inputs()
    exp = method(Toy()).attribute(x, position_mask=mask)
    assert isinstance(exp, Explanation)
    assert exp.importance.shape == (3, LENGTH)
    assert exp.attribution.shape == x.shape
    assert (exp.importance.argmax(-1) == KEY).all()
    assert (exp.importance[:, -1] == 0).all()  # padding never gets importance


def test_integrated_gradients_completeness_with_a_background() -> None:
    x, mask = toy_inputs(2)
    bg = torch.full((LENGTH, ALPHA), 1.0 / ALPHA)
    ig = IntegratedGradients(Toy(), n_steps=200, signed=True)
    exp = ig.attribute(x, background=bg, position_mask=mask)
    base = torch.where(mask[..., None], bg.expand_as(x), x)
    ref = Toy()(x)
    gap = predicted_class_log_probability(Toy()(x), ref) - predicted_class_log_probability(Toy()(base), ref)
    np.testing.assert_allclose(exp.importance.sum(-1), gap.numpy(), rtol=1e-2, atol=1e-3)


def test_random_importance_is_seeded() -> None:
    x, mask = toy_inputs()
    a = RandomImportance(seed=3).attribute(x, position_mask=mask).importance
    b = RandomImportance(seed=3).attribute(x, position_mask=mask).importance
    c = RandomImportance(seed=4).attribute(x, position_mask=mask).importance
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert (a[:, -1] == 0).all()


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(InvalidParameterError):
        GradientXInput(Toy()).attribute(torch.zeros(2, LENGTH, 5))
    with pytest.raises(InvalidParameterError):
        IntegratedGradients(Toy(), n_steps=0)
    with pytest.raises(InvalidParameterError):
        InSilicoMutagenesis(Toy(), reduction="median")


# ----------------------------------------------------------------------------- faithfulness


def test_top_fraction_per_group_and_ties() -> None:
    imp = torch.tensor([[0.9, 0.1, 0.2, 0.8, 0.0, 0.3]])
    groups = torch.tensor([[0, 0, 0, 1, 1, 1]])
    top = top_fraction_mask(imp, 1 / 3, groups=groups)
    assert top.tolist() == [[True, False, False, True, False, False]]
    flat = top_fraction_mask(torch.zeros(2, 10), 0.2, seed=1)
    assert flat.sum(-1).tolist() == [2, 2]
    assert not torch.equal(flat[0], torch.tensor([True, True] + [False] * 8))  # ties broken at random
    with pytest.raises(InvalidParameterError):
        top_fraction_mask(imp, 0.0)


def test_resampling_pssm_keeps_padding() -> None:
    x, mask = toy_inputs(1)
    keep = torch.zeros(1, LENGTH, dtype=torch.bool)
    keep[0, KEY] = True
    bg = torch.full((LENGTH, ALPHA), 0.25)
    p = resampling_pssm(x, keep, bg, mask)
    assert torch.equal(p[0, KEY], x[0, KEY]) and torch.equal(p[0, -1], x[0, -1])
    assert torch.allclose(p[0, 0], bg[0])


def test_faithfulness_separates_good_and_bad_maps() -> None:
    x, mask = toy_inputs(4)
    bg = torch.full((LENGTH, ALPHA), 1.0 / ALPHA)
    good = torch.zeros(4, LENGTH)
    good[:, KEY] = 1.0
    bad = torch.rand(4, LENGTH, generator=torch.Generator().manual_seed(0))
    bad[:, KEY] = -1.0
    kw = {"fractions": (0.15,), "n_samples": 64, "position_mask": mask, "seed": 0}
    g = evaluate_faithfulness(Toy(), x, good, bg, **kw)
    b = evaluate_faithfulness(Toy(), x, bad, bg, **kw)
    assert set(g) == {("inclusion", 0.15), ("occlusion", 0.15)}
    assert np.median(g[("inclusion", 0.15)]) < 0.05 < np.median(b[("inclusion", 0.15)])
    assert np.median(g[("occlusion", 0.15)]) > np.median(b[("occlusion", 0.15)]) + 0.5
    again = evaluate_faithfulness(Toy(), x, good, bg, **kw)
    assert all(np.array_equal(g[k], again[k]) for k in g)  # seeded


def test_ranking_metrics() -> None:
    assert average_precision(np.array([0.9, 0.8, 0.1, 0.7]), np.array([1, 0, 0, 1])) == pytest.approx(5 / 6)
    assert average_precision(np.array([1.0, 1.0, 0.0]), np.array([0, 1, 0])) == pytest.approx(0.5)
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert roc_auc(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)
    with pytest.raises(InvalidParameterError):
        roc_auc(np.array([0.1, 0.2]), np.array([1, 1]))
