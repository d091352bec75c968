"""Scrambling the alignment with the query (the published with-MSA scrambler)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from protscramble.alphabet import one_hot
from protscramble.backgrounds import alignment_background, msa_background
from protscramble.errors import InvalidParameterError
from protscramble.evaluation import draw_variance_components, sampled_divergence, shared_draw_divergence
from protscramble.faithfulness import evaluate_faithfulness
from protscramble.io import parse_a3m_text
from protscramble.masking import KEEP_SCORE
from protscramble.predictors.base import scrambled_forward
from protscramble.predictors.trrosetta import TrRosetta, alignment_features, dca_features, sequence_weights
from protscramble.predictors.trrosetta.features import (
    SCRAMBLER_PROFILE_FLOOR,
    _regularised_inverse,
    msa_one_hot,
    onehot_alignment_features,
)
from protscramble.scrambler import PerExampleScrambler

ALIGNMENT = """>q
MKVLAAGIEELLKK
>a
MKVLSAGLEELLRK
>b
MRILAAGIDEVLKK
>c
-KVLAEGIEQLL--
>d
MKALAAGVEELIKR
>e
MKVIAAGIEEMLKK
"""


@pytest.fixture(scope="module")
def msa():
    return parse_a3m_text(ALIGNMENT)


@pytest.fixture(scope="module")
def scrambling(trrosetta_xaa, msa):
    return trrosetta_xaa.with_msa(msa, scramble_msa=True, msa_pseudocount=1.0)


def test_alignment_background_counts_gaps_as_a_state(msa):
    b = alignment_background(msa, pseudocount=2.0)
    assert b.shape == (msa.length, 21)
    assert np.allclose(b.sum(-1), 1.0)
    # column 0: five M and one gap out of 6 rows; (n + pc) / (N + 21 pc)
    assert b[0, 12] == pytest.approx((5 + 2) / (6 + 42))
    assert b[0, 20] == pytest.approx((1 + 2) / (6 + 42))
    assert b[0, 0] == pytest.approx(2 / (6 + 42))
    # the query background (gaps excluded, 20 states) is a different distribution
    assert msa_background(msa, 2.0)[0, 12] == pytest.approx((5 + 2) / (5 + 40))


@pytest.mark.parametrize("rows", [4, 80])
def test_woodbury_inverse_equals_the_direct_inverse(rows):
    # fewer rows than columns takes the Woodbury path, more rows the direct inverse
    g = torch.Generator().manual_seed(rows)
    x = torch.randn(rows, 30, generator=g, dtype=torch.float64)
    ridge, n = torch.tensor(0.7, dtype=torch.float64), torch.tensor(rows - 0.5, dtype=torch.float64)
    direct = torch.linalg.inv(x.T @ x / n + ridge * torch.eye(30, dtype=torch.float64))
    assert torch.allclose(_regularised_inverse(x, ridge, n), direct, atol=1e-10)


def test_profile_floor_is_the_published_scramblers(msa):
    onehot = msa_one_hot(msa, torch.float64)
    w = sequence_weights(onehot)
    f = (w[:, None, None] * onehot).sum(0) / w.sum()
    profile, _ = alignment_features(msa, profile_floor=SCRAMBLER_PROFILE_FLOOR)
    assert torch.allclose(profile[:, :21].double(), f + 0.005, atol=1e-6)
    entropy = -((f + 0.005) * torch.log(f + 0.005)).sum(-1)
    assert torch.allclose(profile[:, 21].double(), entropy, atol=1e-5)
    with pytest.raises(InvalidParameterError, match="profile floor"):
        TrRosetta("xaa", msa=msa, profile_floor=-1.0)


def test_sampled_alignment_features_are_differentiable(msa):
    onehot = msa_one_hot(msa).requires_grad_()
    profile, pair = onehot_alignment_features(onehot)
    ref_profile, ref_pair = alignment_features(msa)
    assert torch.allclose(profile, ref_profile, atol=1e-5)
    assert torch.allclose(pair, ref_pair, atol=1e-3 * ref_pair.abs().max())
    (profile.sum() + pair[..., :441].square().sum()).backward()
    assert torch.isfinite(onehot.grad).all() and onehot.grad.abs().sum() > 0


def test_scrambling_needs_an_alignment_and_is_off_by_default(trrosetta_xaa, msa):
    with pytest.raises(InvalidParameterError, match="needs an alignment"):
        TrRosetta("xaa", scramble_msa=True)
    fixed = trrosetta_xaa.with_msa(msa)
    assert scrambled_forward(fixed, torch.zeros(1, msa.length), "inclusion", 2) is fixed
    assert not fixed.with_msa(None, scramble_msa=True).scramble_msa


def test_plain_calls_use_the_original_alignment(trrosetta_xaa, scrambling, msa):
    x = one_hot(msa.query)[None]
    with torch.no_grad():
        a, b = trrosetta_xaa.with_msa(msa)(x), scrambling(x)
    for k in a:
        assert torch.equal(a[k], b[k])


def test_kept_alignment_reproduces_the_prediction(trrosetta_xaa, scrambling, msa):
    """Importance high enough to keep every letter draws the original alignment each time."""
    x = one_hot(msa.query)[None]
    keep = torch.full((1, msa.length), KEEP_SCORE)
    with torch.no_grad():
        ref = trrosetta_xaa.with_msa(msa)(x)
        out = scrambled_forward(scrambling, keep, "inclusion", 2, torch.Generator().manual_seed(0), False)(
            x.expand(2, -1, -1)
        )
    for k in ref:
        assert torch.allclose(out[k], ref[k].expand_as(out[k]), atol=1e-4), k


def test_scrambled_alignments_move_the_prediction_and_carry_gradient(scrambling, msa):
    x = one_hot(msa.query)[None]
    scores = torch.full((1, msa.length), 0.3, requires_grad=True)

    def run(seed: int) -> dict[str, torch.Tensor]:
        gens = [torch.Generator().manual_seed(seed)]
        return scrambled_forward(scrambling, scores, "inclusion", 3, gens)(x.expand(3, -1, -1))

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a["dist"], b["dist"])  # seeded
    assert not torch.allclose(a["dist"], c["dist"], atol=1e-3)
    assert not torch.allclose(a["dist"][0], a["dist"][1], atol=1e-3)  # one alignment per sample
    with torch.no_grad():
        ref = scrambling(x)["dist"]
    kl = (ref * (torch.log(ref) - torch.log(a["dist"]))).sum(-1).mean()
    assert kl > 1e-3
    kl.backward()
    assert torch.isfinite(scores.grad).all() and scores.grad.abs().sum() > 0


class _ColumnReader:
    """Toy predictor that sees only a side input per position, scrambled with the sequence.

    The prediction is the side input's letter at position 2; the sequence itself is ignored.
    Each call to ``scrambled_forward`` is recorded.
    """

    alphabet = "AB"

    def __init__(self, length: int) -> None:
        self.side = torch.eye(2)[torch.tensor([1, 0, 1, 0, 0][:length])]
        self.calls: list[tuple[torch.Tensor, str, int, bool]] = []

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._predict(self.side.expand(x.shape[0], -1, -1))

    @staticmethod
    def _predict(side: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"y": torch.softmax(6.0 * side[:, 2:3, :], -1)}

    def scrambled_forward(self, scores, mode, n_samples, generator, differentiable, position_mask):
        from protscramble.masking import scramble_pssm
        from protscramble.sampling import sample_pssm

        self.calls.append((scores.detach().clone(), mode, n_samples, differentiable))
        b = scores.shape[0]
        side = self.side.expand(b, -1, -1)
        pssm = scramble_pssm(side, scores, torch.full((5, 2), 0.5), mode, position_mask)
        draws = sample_pssm(pssm, n_samples, "categorical_st", generator=generator)
        return lambda x: self._predict(draws.reshape(n_samples * b, 5, 2))


def test_engine_scrambles_side_inputs_with_the_same_importance():
    """Only the side input at position 2 matters: the scrambler must find it through the hook."""
    toy = _ColumnReader(5)
    x = torch.eye(2)[torch.tensor([0, 0, 0, 0, 0])][None]
    bg = torch.full((5, 2), 0.5)
    exp = PerExampleScrambler(toy, steps=150, samples=4, target_bits=0.3, learning_rate=0.05).attribute(x, bg)
    assert int(np.argmax(exp.importance[0])) == 2
    assert len(toy.calls) == 150 and all(c[1:] == ("inclusion", 4, True) for c in toy.calls)


def test_evaluation_and_faithfulness_draw_side_inputs_from_the_scores():
    toy = _ColumnReader(5)
    x = torch.eye(2)[torch.tensor([0, 0, 0, 0, 0])][None]
    bg = torch.full((5, 2), 0.5)
    ref = toy(x)
    scores = torch.tensor([[0.0, 0.0, 5.0, 0.0, 0.0]])
    kept = sampled_divergence(toy, ref, bg[None], 64, scores=scores)
    lost = sampled_divergence(toy, ref, bg[None], 64, scores=scores.roll(1, -1))
    assert kept.mean() < 0.01 < lost.mean()
    assert toy.calls[-1][1:] == ("inclusion", 8, False)
    toy.calls.clear()
    res = evaluate_faithfulness(toy, x, scores, bg, fractions=(0.2,), n_samples=32)
    assert res[("inclusion", 0.2)][0] < 0.01 < res[("occlusion", 0.2)][0]
    keeps = [c[0] for c in toy.calls]
    assert torch.equal(keeps[0], torch.tensor([[0.0, 0.0, KEEP_SCORE, 0.0, 0.0]]))
    assert torch.equal(keeps[1], KEEP_SCORE - keeps[0])


def test_gradient_clipping_changes_only_large_gradients():
    class Toy:
        alphabet = "AB"

        def __call__(self, x):
            return {"y": torch.softmax(x[:, :1, :] * 5, -1)}

    x = torch.eye(2)[[0, 1, 1, 0]][None]
    bg = torch.full((4, 2), 0.5)

    def run(clip):
        return PerExampleScrambler(Toy(), steps=20, samples=2, clip_value=clip).attribute(x, bg).importance

    assert np.array_equal(run(None), run(1e9))
    assert not np.allclose(run(None), run(1e-6))
    with pytest.raises(InvalidParameterError, match="clip"):
        PerExampleScrambler(Toy(), clip_value=0.0)


def test_shared_draws_score_every_sample_of_a_group_under_one_side_input():
    """The published with-MSA evaluation's estimator: one side-input draw per group of samples."""
    toy = _ColumnReader(5)
    x = torch.eye(2)[torch.tensor([0, 0, 0, 0, 0])][None]
    bg = torch.full((5, 2), 0.5)
    ref = toy(x)
    scores = torch.zeros(1, 5)  # position 2's side input is a coin flip per draw
    v = shared_draw_divergence(toy, ref, bg[None], 12, 4, scores=scores, seed=3)
    assert v.shape == (12, 4)
    # the toy reads only the side input: one value per group, and the groups differ
    assert np.ptp(v, axis=1).max() == 0.0 and np.ptp(v[:, 0]) > 0.1
    assert [c[1:] for c in toy.calls] == [("inclusion", 1, False)] * 12
    c = draw_variance_components(v)
    assert c["within"] == 0.0 and c["between"] == pytest.approx(np.var(v[:, 0], ddof=1))
    assert np.array_equal(v, shared_draw_divergence(toy, ref, bg[None], 12, 4, scores=scores, seed=3))
    with pytest.raises(InvalidParameterError, match="one example"):
        shared_draw_divergence(toy, ref, bg[None].expand(2, -1, -1), 2, 2, scores=scores.expand(2, -1))


def test_shared_draws_of_a_plain_predictor_are_ordinary_samples():
    class Toy:
        alphabet = "AB"

        def __call__(self, x):
            return {"y": torch.softmax(x[:, :2, :] * 3, -1)}

    x = torch.eye(2)[[0, 1, 1, 0]][None]
    pssm = torch.full((1, 4, 2), 0.5)
    ref = Toy()(x)
    v = shared_draw_divergence(Toy(), ref, pssm, 30, 20, scores=torch.zeros(1, 4))
    c = draw_variance_components(v)
    # no side input: the groups are exchangeable, so the between-draw part is (nearly) nothing
    assert c["within"] > 0.01 and c["between"] < 0.1 * c["within"]
    plain = sampled_divergence(Toy(), ref, pssm, 600, seed=1)
    assert c["mean"] == pytest.approx(plain.mean(), abs=4 * plain.std() / np.sqrt(600))


def test_draw_variance_components_recover_known_parts():
    rng = np.random.default_rng(0)
    between, within = 0.04, 1.0
    v = rng.normal(0, np.sqrt(between), (400, 1)) + rng.normal(0, np.sqrt(within), (400, 50))
    c = draw_variance_components(v, n_per_estimate=512)
    assert c["within"] == pytest.approx(within, rel=0.05)
    assert c["between"] == pytest.approx(between, rel=0.25)
    assert c["estimate_sd"] == pytest.approx(np.sqrt(between + within / 512), rel=0.15)
    with pytest.raises(InvalidParameterError, match="at least 2 draws"):
        draw_variance_components(v[:1])


def test_shared_alignment_draws_on_trrosetta(scrambling, msa):
    """Query fixed, alignment scrambled: a group shares its alignment, so its values agree."""
    x = one_hot(msa.query)[None]
    with torch.no_grad():
        ref = scrambling(x)
    scores = torch.full((1, msa.length), 0.3)
    v = shared_draw_divergence(scrambling, ref, x, 3, 2, scores=scores, seed=0)
    assert np.isfinite(v).all() and (v > 1e-4).all()
    assert np.allclose(v[:, 0], v[:, 1], rtol=1e-4) and np.ptp(v[:, 0]) > 1e-4
    kept = shared_draw_divergence(scrambling, ref, x, 2, 1, scores=torch.full_like(scores, KEEP_SCORE))
    assert np.abs(kept).max() < 1e-4


def test_dca_features_unchanged_by_the_woodbury_path(msa):
    # 6 rows x (14 x 21) columns: the Woodbury path, against an explicit inverse
    onehot = msa_one_hot(msa, torch.float64)
    w = sequence_weights(onehot)
    feats = dca_features(onehot, w)
    x = onehot.reshape(onehot.shape[0], -1)
    n = w.sum() - torch.sqrt(w.mean())
    mu = (x * w[:, None]).sum(0) / n
    xc = (x - mu) * w[:, None].sqrt()
    inv = torch.linalg.inv(xc.T @ xc / n + torch.eye(x.shape[1], dtype=torch.float64) * 4.5 / w.sum().sqrt())
    length = msa.length
    expected = inv.reshape(length, 21, length, 21).permute(0, 2, 1, 3).reshape(length, length, 441)
    assert torch.allclose(feats[..., :441], expected, atol=1e-8)


def test_benchmark_scrambles_the_alignment_of_an_msa_protein(trrosetta_xaa, msa, tmp_path):
    """End to end on real trRosetta: the protein's alignment settings reach the predictor and the results."""
    import json

    from protscramble.benchmark import PROTOCOLS, BenchmarkProtein, run_benchmark
    from protscramble.benchmark.runner import read_tsv

    tiny = PROTOCOLS["quick"].with_overrides(steps=3, samples=2, eval_samples=6, faithfulness_samples=4)
    evals = {}
    for scramble in (False, True):
        protein = BenchmarkProtein(
            "toy_msa", msa.query, msa, msa_features=True, scramble_msa=scramble,
            profile_floor=SCRAMBLER_PROFILE_FLOOR, clip_value=0.5, background="msa", target_bits=0.5,
        )  # fmt: skip
        out = run_benchmark([protein], ["scrambler_inclusion"], tiny, tmp_path / str(scramble),
                            predictor=trrosetta_xaa, figures=False)  # fmt: skip
        done = json.loads((out / "proteins" / "toy_msa" / "done.json").read_text())
        assert (done["settings"]["scramble_msa"], done["settings"]["clip_value"]) == (scramble, 0.5)
        (row,) = read_tsv(out / "eval_kl.tsv")
        evals[scramble] = row["eval_kl_mean"]
    # scrambling the alignment as well loses more of the prediction at the same budget
    assert evals[True] > evals[False] > 0


def test_memory_sizing_counts_the_sampled_alignments(trrosetta_xaa, scrambling, msa, monkeypatch):
    import protscramble.predictors.trrosetta.model as model

    fixed = trrosetta_xaa.with_msa(msa)
    monkeypatch.setattr(model, "available_memory", lambda device: 128 * 2**30)
    # at L = 100 a sampled alignment's (2,100 x 2,100) matrices add about 8% to a sample's memory
    assert scrambling.max_batch(100) < fixed.max_batch(100)
    monkeypatch.setattr(model, "available_memory", lambda device: 3.2 * 2**30)  # 2.8 GiB checkpointed
    fixed.check_fits(300, 1, with_grad=True)
    with pytest.raises(model.DeviceMemoryError, match="GiB"):
        scrambling.check_fits(300, 1, with_grad=True)


def test_positions_outside_the_mask_keep_their_alignment_columns(trrosetta_xaa, scrambling, msa):
    """Fixed positions are not scrambled: with every position fixed, scores do not matter."""
    x = one_hot(msa.query)[None]
    fixed = torch.zeros(1, msa.length, dtype=torch.bool)
    with torch.no_grad():
        ref = trrosetta_xaa.with_msa(msa)(x)
        out = scrambled_forward(
            scrambling, torch.zeros(1, msa.length), "inclusion", 2, torch.Generator(), False, fixed
        )(x.expand(2, -1, -1))
    assert torch.allclose(out["dist"], ref["dist"].expand_as(out["dist"]), atol=1e-4)


def test_report_predictions_scramble_the_alignment_when_the_explanation_did(trrosetta_xaa, msa):
    from protscramble.report import scrambled_predictions

    pssm = one_hot(msa.query).numpy()  # the query is kept: only the alignment can move the maps

    def maps(importance, scramble):
        return scrambled_predictions(msa.query, pssm, trrosetta_xaa, n_samples=2, msa=msa,
                                     importance=importance, scramble_msa=scramble)  # fmt: skip

    plain = maps(None, False)
    assert np.allclose(plain["scrambled_dist"], plain["dist"], atol=1e-5)
    kept = maps(np.full(msa.length, KEEP_SCORE), True)
    assert np.allclose(kept["scrambled_dist"], plain["dist"], atol=1e-4)
    lost = maps(np.zeros(msa.length), True)
    assert not np.allclose(lost["scrambled_dist"], plain["dist"], atol=1e-3)
    with pytest.raises(InvalidParameterError, match="importance"):
        maps(None, True)


def test_split_forwards_slice_each_sample_with_its_own_alignment(trrosetta_xaa, msa):
    """No-grad calls in chunks give every sequence sample its own scrambled alignment, as one call does."""
    x = one_hot(msa.query)[None]
    scores = torch.full((1, msa.length), 0.3)
    out = []
    for batch in (None, 2):
        tr = TrRosetta(networks=trrosetta_xaa.networks, precision="fp32", inference_batch=batch)
        tr = tr.with_msa(msa, scramble_msa=True, msa_pseudocount=1.0)
        with torch.no_grad():
            gen = torch.Generator().manual_seed(3)
            out.append(scrambled_forward(tr, scores, "occlusion", 5, gen, False)(x.expand(5, -1, -1)))
    whole, split = out
    for k in whole:
        assert torch.allclose(whole[k], split[k], atol=1e-5), k
    assert not torch.allclose(whole["dist"][0], whole["dist"][1], atol=1e-3)  # the alignments differ


def test_curve_divergences_do_not_depend_on_the_batch_size(trrosetta_xaa, msa):
    scrambling = TrRosetta(networks=trrosetta_xaa.networks, precision="fp32", inference_batch=None).with_msa(
        msa, scramble_msa=True, msa_pseudocount=1.0
    )
    x = one_hot(msa.query)[None]
    imp = torch.linspace(0, 1, msa.length)[None]
    bg = torch.as_tensor(msa_background(msa, 1.0), dtype=torch.float32)
    kw = dict(fractions=(0.2, 0.5), n_samples=6, seed=4)
    a = evaluate_faithfulness(scrambling, x, imp, bg, batch_size=1, **kw)
    b = evaluate_faithfulness(scrambling, x, imp, bg, batch_size=256, **kw)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6)
