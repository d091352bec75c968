from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from protscramble.backgrounds import (
    NATIVE_PDB_FREQUENCIES,
    make_background,
    msa_background,
    native_background,
    user_background,
)
from protscramble.errors import InvalidParameterError
from protscramble.io import parse_a3m_text
from protscramble.masking import conservation_bits, conservation_penalty, scramble_pssm
from protscramble.objectives import prediction_kl
from protscramble.sampling import sample_pssm, sample_sequences


def _x(length=6, a=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, a, (2, length), generator=g)
    return torch.nn.functional.one_hot(idx, a).float()


def test_zero_importance_gives_background_exactly():
    x = _x()
    bg = torch.tensor(native_background(6), dtype=torch.float32)
    pssm = scramble_pssm(x, torch.zeros(2, 6), bg, "inclusion")
    assert torch.allclose(pssm, bg.expand_as(pssm), atol=1e-7)


def test_large_importance_recovers_input():
    x = _x()
    bg = torch.full((6, 20), 0.05)
    pssm = scramble_pssm(x, torch.full((2, 6), 30.0), bg, "inclusion")
    assert torch.allclose(pssm, x, atol=1e-6)


def test_occlusion_inverts_importance():
    x = _x()
    bg = torch.full((6, 20), 0.05)
    kept = scramble_pssm(x, torch.full((2, 6), 1e-3), bg, "occlusion")
    assert torch.allclose(kept, x, atol=1e-6)
    scrambled = scramble_pssm(x, torch.full((2, 6), 1e6), bg, "occlusion")
    assert torch.allclose(scrambled, bg.expand_as(scrambled), atol=1e-5)


def test_inclusion_formula_matches_definition():
    x = _x(4)
    bg = torch.tensor(native_background(4), dtype=torch.float32)
    s = torch.tensor([[0.3, 1.0, 2.0, 0.0], [0.1, 0.2, 0.5, 4.0]])
    pssm = scramble_pssm(x, s, bg, "inclusion")
    unnorm = bg * torch.exp(s[..., None] * (2 * x - 1))
    assert torch.allclose(pssm, unnorm / unnorm.sum(-1, keepdim=True), atol=1e-6)


def test_position_mask_keeps_input_rows():
    x = _x()
    x[:, -2:] = 0.0  # padding rows
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[:, -2:] = False
    pssm = scramble_pssm(x, torch.zeros(2, 6), torch.full((6, 20), 0.05), "inclusion", mask)
    assert torch.equal(pssm[:, -2:], x[:, -2:])
    s = sample_pssm(pssm, 3, generator=torch.Generator().manual_seed(0), position_mask=mask, x=x)
    assert torch.equal(s[:, :, -2:], torch.zeros(3, 2, 2, 20))
    assert torch.isfinite(s).all()


def test_conservation_bits():
    bg = torch.tensor(native_background(6), dtype=torch.float32)
    assert torch.allclose(conservation_bits(bg.expand(2, 6, 20), bg), torch.zeros(2), atol=1e-6)
    x = _x()
    bits = conservation_bits(x, bg)
    expected = -np.log2(bg.numpy()[np.arange(6), x.argmax(-1).numpy()]).mean(-1)
    assert np.allclose(bits.numpy(), expected, atol=1e-4)
    assert float(conservation_penalty(torch.tensor(1.5), 1.0, 10.0)) == pytest.approx(2.5)


def test_zero_kl_for_identical_predictions_and_positive_otherwise():
    g = torch.Generator().manual_seed(1)
    p = {"dist": torch.softmax(torch.randn(3, 5, 5, 37, generator=g), -1)}
    q = {"dist": torch.softmax(torch.randn(3, 5, 5, 37, generator=g), -1)}
    assert torch.allclose(prediction_kl(p, p), torch.zeros(3), atol=1e-6)
    assert (prediction_kl(p, q) > 0).all()
    manual = (p["dist"] * (p["dist"].log() - q["dist"].log())).sum(-1).mean((1, 2))
    assert torch.allclose(prediction_kl(p, q), manual, atol=1e-4)
    rev = (q["dist"] * (q["dist"].log() - p["dist"].log())).sum(-1).mean((1, 2))
    assert torch.allclose(prediction_kl(p, q, "reverse"), rev, atol=1e-4)


@pytest.mark.parametrize("method", ["gumbel_softmax", "gumbel_st", "categorical_st"])
def test_gradients_reach_scores(method):
    x = _x()
    bg = torch.full((6, 20), 0.05)
    scores = torch.full((2, 6), 0.5, requires_grad=True)
    w = torch.randn(20, 4, generator=torch.Generator().manual_seed(0))
    pssm = scramble_pssm(x, scores, bg)
    s = sample_pssm(pssm, 4, method, 0.5, torch.Generator().manual_seed(0))
    out = torch.softmax(s @ w, -1)
    ref = torch.softmax(x @ w, -1)
    loss = prediction_kl(
        {"y": ref.unsqueeze(0).expand_as(out).reshape(8, 6, 4)}, {"y": out.reshape(8, 6, 4)}
    ).sum()
    loss.backward()
    assert scores.grad is not None and torch.isfinite(scores.grad).all() and scores.grad.abs().sum() > 0
    if method != "gumbel_softmax":
        assert torch.allclose(s.detach().sum(-1), torch.ones(4, 2, 6))
        assert set(s.detach().unique().tolist()) <= {0.0, 1.0}


def test_sampling_is_seeded():
    pssm = torch.softmax(torch.randn(2, 6, 20, generator=torch.Generator().manual_seed(3)), -1)
    a = sample_pssm(pssm, 5, generator=torch.Generator().manual_seed(7))
    b = sample_pssm(pssm, 5, generator=torch.Generator().manual_seed(7))
    c = sample_pssm(pssm, 5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_hard_samples_follow_pssm():
    pssm = torch.tensor([[[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]]])
    s = sample_sequences(pssm, 4000, torch.Generator().manual_seed(0))
    freq = s.mean(0)[0]
    assert torch.allclose(freq, pssm[0], atol=0.03)


def test_msa_background_formula():
    msa = parse_a3m_text(">q\nAR\n>s1\nA-\n>s2\nRR\n")
    b = msa_background(msa, pseudocount=2.0)
    # column 0: A twice, R once, N=3 -> (2+2)/(3+40)
    assert b[0, 0] == pytest.approx(4 / 43)
    assert b[0, 1] == pytest.approx(3 / 43)
    # column 1: R twice (gap excluded), N=2
    assert b[1, 1] == pytest.approx(4 / 42)
    assert np.allclose(b.sum(1), 1.0)


def test_backgrounds_validation():
    assert np.allclose(native_background(3)[0], NATIVE_PDB_FREQUENCIES / NATIVE_PDB_FREQUENCIES.sum())
    assert make_background("uniform", 4).shape == (4, 20)
    with pytest.raises(InvalidParameterError):
        make_background("msa", 4)
    with pytest.raises(InvalidParameterError):
        make_background("nope", 4)
    with pytest.raises(InvalidParameterError):
        user_background(-np.ones(20), 4)
    with pytest.raises(InvalidParameterError):
        user_background(np.ones((3, 20)), 4)
    assert np.allclose(user_background(np.arange(1, 21), 2).sum(1), 1)
    assert math.isclose(float(user_background(np.ones(20), 2)[1, 5]), 0.05)
