"""Attribution baselines and the generic faithfulness harness, on a toy predictor."""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import pytest
import torch

from protscramble.baselines import (
    DeepLift,
    DeepLiftShap,
    GradientSaliency,
    GradientXInput,
    InSilicoMutagenesis,
    IntegratedGradients,
    RandomImportance,
    predicted_class_log_probability,
)
from protscramble.errors import BackendUnavailableError, InvalidParameterError
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
    # one mode alone draws the same samples as when both are asked for
    alone = evaluate_faithfulness(Toy(), x, bad, bg, modes=("occlusion",), **kw)
    assert set(alone) == {("occlusion", 0.15)}
    assert np.array_equal(alone[("occlusion", 0.15)], b[("occlusion", 0.15)])


def test_ranking_metrics() -> None:
    assert average_precision(np.array([0.9, 0.8, 0.1, 0.7]), np.array([1, 0, 0, 1])) == pytest.approx(5 / 6)
    assert average_precision(np.array([1.0, 1.0, 0.0]), np.array([0, 1, 0])) == pytest.approx(0.5)
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert roc_auc(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)
    with pytest.raises(InvalidParameterError):
        roc_auc(np.array([0.1, 0.2]), np.array([1, 1]))


class LayerwiseToy(torch.nn.Module):
    """Linear -> ELU -> linear -> sigmoid, every nonlinearity a module of its own (what DeepLift hooks)."""

    alphabet = "ABCD"

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(3)
        self.w1 = torch.nn.Parameter(torch.randn(LENGTH * ALPHA, 6, generator=gen), requires_grad=False)
        self.w2 = torch.nn.Parameter(torch.randn(6, 1, generator=gen), requires_grad=False)
        self.elu, self.sigmoid = torch.nn.ELU(), torch.nn.Sigmoid()
        self.layerwise_calls = 0

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        p = self.sigmoid(self.elu(x.reshape(x.shape[0], -1) @ self.w1) @ self.w2)
        return {"y": torch.cat([1 - p, p], -1).unsqueeze(1)}

    @contextlib.contextmanager
    def layerwise(self):
        self.layerwise_calls += 1
        yield [self]


class EagerOnlyToy(LayerwiseToy):
    layerwise = None  # type: ignore[assignment]


class KeyedLayerwiseToy(LayerwiseToy):
    """LayerwiseToy whose class follows the letter at KEY (class 1 iff letter 0), as Toy's does."""

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logit = 6.0 * x[:, KEY, 0] - 3.0 + 0.1 * (x.reshape(x.shape[0], -1) @ self.w1 @ self.w2).squeeze(-1)
        p = self.sigmoid(self.elu(logit)).unsqueeze(-1)
        return {"y": torch.cat([1 - p, p], -1).unsqueeze(1)}


def probability_of_class_1(prediction, reference):  # noqa: ANN001, ANN201
    return prediction["y"][:, 0, 1]  # linear in the outputs, so DeepLift's completeness is exact


def test_deeplift_rescale_rule_is_complete_where_every_nonlinearity_is_a_module() -> None:
    x, mask = toy_inputs(2)
    bg = torch.full((LENGTH, ALPHA), 1.0 / ALPHA)
    toy = LayerwiseToy()
    dl = DeepLift(toy, objective=probability_of_class_1, signed=True)
    exp = dl.attribute(x, background=bg, position_mask=mask)
    assert toy.layerwise_calls == 1 and exp.importance.shape == (2, LENGTH)
    with torch.no_grad():
        base = torch.where(mask.unsqueeze(-1), bg.expand_as(x), x)
        delta = toy(x)["y"][:, 0, 1] - toy(base)["y"][:, 0, 1]
    # Summation to delta holds for the rescale rule, not for gradient x (input - baseline).
    np.testing.assert_allclose(exp.importance.sum(-1), delta.numpy(), rtol=1e-4, atol=1e-6)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(toy(xg)["y"][:, 0, 1].sum(), xg)
    linearised = ((x - base) * grad).sum((-1, -2))
    assert not torch.allclose(linearised, delta, rtol=1e-2)
    assert (exp.importance[:, -1] == 0).all()  # padding row
    with pytest.raises(BackendUnavailableError, match="layerwise"):
        DeepLift(EagerOnlyToy()).attribute(x, background=bg)


@pytest.mark.filterwarnings("ignore:Setting forward, backward hooks")  # Captum's own DeepLiftShap
def test_deeplift_shap_is_captums_deeplift_shap_over_the_same_baselines() -> None:
    from captum.attr import DeepLiftShap as CaptumDeepLiftShap

    x, mask = toy_inputs(2)
    bg = torch.tensor([0.4, 0.3, 0.2, 0.1]).expand(LENGTH, ALPHA)
    toy = LayerwiseToy()
    ours = DeepLiftShap(toy, objective=probability_of_class_1, n_baselines=5, signed=True, seed=7)
    exp = ours.attribute(x, background=bg, position_mask=mask)
    baselines = ours.baseline_sequences(x, mask, bg)
    assert len(baselines) == 5 and all(torch.equal(b[:, -1], x[:, -1]) for b in baselines)
    assert not torch.equal(baselines[0], baselines[1])  # drawn, not repeated

    class Objective(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.toy = toy

        def forward(self, inp: torch.Tensor) -> torch.Tensor:
            return probability_of_class_1(toy(inp), None)

    for i in range(2):
        ref = CaptumDeepLiftShap(Objective()).attribute(
            x[i : i + 1].clone().requires_grad_(True), baselines=torch.cat([b[i : i + 1] for b in baselines])
        )
        np.testing.assert_allclose(exp.importance[i], ref.sum(-1)[0].detach().numpy(), rtol=1e-4, atol=1e-6)
    again = ours.attribute(x, background=bg, position_mask=mask)
    np.testing.assert_array_equal(again.importance, exp.importance)
    with pytest.raises(InvalidParameterError):
        DeepLiftShap(toy, n_baselines=0)


@pytest.mark.filterwarnings("ignore:Setting forward, backward hooks")
@pytest.mark.parametrize(
    ("make", "one_per_call", "all_in_one"),
    [
        (lambda p: GradientSaliency(p), 1, 256),
        (lambda p: GradientXInput(p, signed=True), 1, 256),
        (
            lambda p: IntegratedGradients(p, n_steps=16, signed=True),
            16,
            256,
        ),  # examples per call: max_batch // 16
        (lambda p: DeepLift(p, signed=True), 2, 64),  # inputs and baselines share a call
    ],
    ids=["saliency", "gradient_x_input", "integrated_gradients", "deeplift"],
)
def test_gradient_methods_do_not_depend_on_how_the_batch_is_sliced(make, one_per_call, all_in_one) -> None:  # noqa: ANN001
    # Half the examples predict the other class, so a reference map sliced out of step with its
    # inputs changes the objective for them.
    x, mask = toy_inputs(4)
    x[1::2, KEY] = torch.nn.functional.one_hot(torch.tensor(1), ALPHA).float()
    toy = KeyedLayerwiseToy()
    assert toy(x)["y"][:, 0].argmax(-1).tolist() == [1, 0, 1, 0]
    method = make(toy)
    if isinstance(method, IntegratedGradients | DeepLift):
        method = functools.partial(method.attribute, background=torch.full((LENGTH, ALPHA), 1.0 / ALPHA))
    else:
        method = method.attribute
    sliced = method(x, position_mask=mask, max_batch=one_per_call).importance
    whole = method(x, position_mask=mask, max_batch=all_in_one).importance
    np.testing.assert_allclose(sliced, whole, rtol=1e-5, atol=1e-7)
    assert not np.allclose(whole[0], whole[1])  # the two classes' examples do differ
