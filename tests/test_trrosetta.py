"""The trRosetta adapter: exactness against the original, features, weights handling."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import shared_file

from protscramble.alphabet import one_hot
from protscramble.errors import DeviceMemoryError, InvalidParameterError, WeightsNotFoundError
from protscramble.io import parse_a3m_text, read_a3m
from protscramble.predictors import Predictor
from protscramble.predictors.trrosetta import (
    TrRosetta,
    alignment_features,
    dca_features,
    parse_models,
    sequence_features,
    sequence_weights,
    weights_folder,
)
from protscramble.predictors.trrosetta.features import msa_one_hot

SEQ = "MKVLAAGIEELLKKLG"


def test_golden_prediction_matches_original_trrosetta(trrosetta_xaa):
    msa = read_a3m(shared_file("trrosetta", "TR005257.a3m"))
    ref = np.load(shared_file("trrosetta", "TR005257_xaa_reference.npz"))
    pred = trrosetta_xaa.with_msa(msa).predict_sequence(msa.query)
    for name, bins in [("dist", 37), ("omega", 25), ("theta", 25), ("phi", 13)]:
        expected = ref[name][0]
        assert pred[name].shape == expected.shape == (72, 72, bins)
        assert pred[name].dtype == np.float32
        assert np.abs(pred[name] - expected).max() < 1e-3, name
    # theta and phi are asymmetric: the transposed map must NOT match
    for name in ("theta", "phi"):
        assert np.abs(pred[name].transpose(1, 0, 2) - ref[name][0]).max() > 0.1


def test_is_a_predictor_with_probability_maps(trrosetta_xaa):
    assert isinstance(trrosetta_xaa, Predictor)
    out = trrosetta_xaa(one_hot(SEQ)[None])
    for name, v in out.items():
        assert v.shape[:3] == (1, len(SEQ), len(SEQ))
        assert torch.allclose(v.sum(-1), torch.ones(1, len(SEQ), len(SEQ)), atol=1e-5), name
    assert torch.allclose(out["dist"], out["dist"].transpose(1, 2), atol=1e-6)
    assert not torch.allclose(out["theta"], out["theta"].transpose(1, 2), atol=1e-3)


def test_factored_first_layer_equals_tiled_features(trrosetta_xaa):
    """Our first layer on 1-D features equals the original's 1x1 conv on tiled 526-channel pairs."""
    net = trrosetta_xaa.networks[0]
    x = torch.softmax(torch.randn(2, 9, 20, generator=torch.Generator().manual_seed(0)), -1)
    f1d = sequence_features(x)
    length = x.shape[1]
    pair = torch.randn(length, length, 442, generator=torch.Generator().manual_seed(1))
    # original layout: channels (f_i, f_j, pair_ij), image indexed [j, i] as the published port feeds it
    f2d = torch.cat([f1d[:, :, None].expand(-1, -1, length, -1), f1d[:, None].expand(-1, length, -1, -1),
                     pair.expand(2, -1, -1, -1)], -1)  # fmt: skip
    conv, norm = net.first_block[0], net.first_block[1]
    tiled = F.elu(
        F.instance_norm(conv(f2d.permute(0, 3, 2, 1)), weight=norm.weight, bias=norm.bias, eps=1e-6)
    )
    ours = net.embed(f1d, net.project_pair_features(pair, length))
    assert torch.allclose(ours, tiled, atol=1e-4)


def test_soft_input_features_are_differentiable():
    x = torch.softmax(torch.randn(1, 5, 20), -1).requires_grad_()
    f = sequence_features(x)
    assert f.shape == (1, 5, 42)
    assert torch.equal(f[..., 20:40], x)  # profile of a one-row MSA is the sequence
    assert torch.equal(f[..., 40:], torch.zeros(1, 5, 2))  # gap channel empty, entropy not passed on
    f.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_single_sequence_features_equal_a_one_row_alignment():
    from protscramble.predictors.trrosetta.features import alignment_features

    seq = "MKVLAAGIEELLKKLG"
    profile, pair = alignment_features(parse_a3m_text(f">q\n{seq}\n"))
    x = one_hot(seq)[None]
    assert pair is None  # a one-row alignment has no couplings
    assert torch.allclose(sequence_features(x), sequence_features(x, profile), atol=1e-6)


def test_msa_features():
    # rows 1 and 2 are identical -> each weighs 1/2; row 3 differs -> weight 1
    msa = parse_a3m_text(">q\nMKVLA\n>a\nMKVLA\n>b\nGGSTP\n")
    w = sequence_weights(msa_one_hot(msa, torch.float64))
    assert torch.allclose(w, torch.tensor([0.5, 0.5, 1.0], dtype=torch.float64))
    profile, pair = alignment_features(msa)
    assert profile.shape == (5, 22)
    assert torch.allclose(profile[:, :21].sum(-1), torch.ones(5), atol=1e-6)
    # column 0: M with weight 1 (two halves), G with weight 1 -> 0.5 / 0.5, entropy ln 2
    assert profile[0, 12] == pytest.approx(0.5, abs=1e-6) and profile[0, 7] == pytest.approx(0.5, abs=1e-6)
    assert profile[0, 21] == pytest.approx(np.log(2), abs=1e-5)
    assert pair.shape == (5, 5, 442)
    contacts = pair[..., -1]
    assert torch.allclose(contacts, contacts.T, atol=1e-5)
    assert torch.all(torch.diagonal(contacts) == 0)
    # couplings [i, j, a*21+b] are the inverse covariance block (i, a, j, b): transposing swaps a and b
    c = pair[..., :441].reshape(5, 5, 21, 21)
    assert torch.allclose(c, c.permute(1, 0, 3, 2), atol=1e-4)
    assert alignment_features(parse_a3m_text(">q\nMKV\n"))[1] is None


def test_dca_matches_direct_inverse():
    msa = parse_a3m_text(">q\nMKV\n>a\nMRV\n>b\nGKI\n>c\nMKI\n")
    onehot = msa_one_hot(msa, torch.float64)
    w = sequence_weights(onehot)
    feats = dca_features(onehot, w)
    x = onehot.reshape(4, -1)
    neff = w.sum() - torch.sqrt(w.mean())
    mu = (x * w[:, None]).sum(0) / neff
    cov = ((x - mu) * w[:, None].sqrt()).T @ ((x - mu) * w[:, None].sqrt()) / neff
    inv = torch.linalg.inv(cov + torch.eye(63, dtype=torch.float64) * 4.5 / w.sum().sqrt())
    assert torch.allclose(
        feats[0, 2, :441].double(), inv[0:21, 42:63].reshape(-1).float().double(), atol=1e-5
    )


def test_ensemble_is_the_mean_of_models(trrosetta_xaa):
    two = TrRosetta("xaa,xab", precision="fp32")
    xab = TrRosetta("xab", precision="fp32")
    x = one_hot(SEQ)[None]
    with torch.no_grad():
        a, b, ab = trrosetta_xaa(x), xab(x), two(x)
    for k in ab:
        assert torch.allclose(ab[k], (a[k] + b[k]) / 2, atol=1e-6)
    assert not torch.allclose(a["dist"], b["dist"], atol=1e-3)


def test_alignment_length_must_match(trrosetta_xaa):
    bound = trrosetta_xaa.with_msa(parse_a3m_text(">q\nMKVLA\n>a\nMKVLG\n"))
    with pytest.raises(InvalidParameterError, match="alignment length"):
        bound(one_hot("MKV")[None])


def test_model_names():
    assert parse_models("all") == ("xaa", "xab", "xac", "xad", "xae")
    assert parse_models("xac, xaa") == ("xac", "xaa")
    with pytest.raises(InvalidParameterError, match="xzz"):
        parse_models("xaa,xzz")


def test_weights_come_from_cache_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PROTSCRAMBLE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PROTSCRAMBLE_TRROSETTA_WEIGHTS", raising=False)
    folder = weights_folder()
    assert folder.is_relative_to(tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == [f"model.xa{c}.pt" for c in "abcde"]
    # pointing at the extracted folder works; pointing at nothing names the install command
    monkeypatch.setenv("PROTSCRAMBLE_TRROSETTA_WEIGHTS", str(folder))
    assert weights_folder() == folder
    monkeypatch.setenv("PROTSCRAMBLE_TRROSETTA_WEIGHTS", str(tmp_path / "nowhere"))
    with pytest.raises(WeightsNotFoundError, match="pip install tr-rosetta-pytorch"):
        TrRosetta("xaa")


def test_concurrent_extraction_keeps_the_published_weights(tmp_path, monkeypatch):
    """A second process finishing its extraction after the first published must not delete the files
    the first (or its readers) use; a partial folder left by a crash is replaced."""
    import protscramble.predictors.trrosetta.weights as weights

    monkeypatch.setenv("PROTSCRAMBLE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PROTSCRAMBLE_TRROSETTA_WEIGHTS", raising=False)
    folder = weights_folder()
    inode = (folder / "model.xaa.pt").stat().st_ino
    with open(folder / "model.xaa.pt", "rb") as held:  # a reader holding a file open
        # this process checked before the other published, so it extracts as well
        real, calls = weights._complete, []

        def complete_after_first_check(d):
            calls.append(d)
            return len(calls) > 1 and real(d)

        monkeypatch.setattr(weights, "_complete", complete_after_first_check)
        assert weights_folder() == folder and calls  # told "not there yet", it extracted too
        assert (folder / "model.xaa.pt").stat().st_ino == inode and held.read(2)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folder left
    monkeypatch.undo()
    monkeypatch.setenv("PROTSCRAMBLE_CACHE", str(tmp_path / "cache"))
    (folder / "model.xab.pt").unlink()  # a partial folder
    assert weights_folder() == folder and (folder / "model.xab.pt").is_file()
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def test_too_long_for_memory_is_a_clear_error(trrosetta_xaa, monkeypatch):
    import protscramble.predictors.trrosetta.model as model

    monkeypatch.setattr(model, "available_memory", lambda device: 2 * 2**30)
    with pytest.raises(DeviceMemoryError, match="GiB"):
        trrosetta_xaa.check_fits(600, 1, with_grad=True)
    trrosetta_xaa.check_fits(30, 1, with_grad=True)


def _keras_contrib_norm(x, running_mean=None, running_var=None, weight=None, bias=None, *args, **kwargs):
    """keras_contrib's InstanceNormalization written out: (x - mean) / (std + 1e-3) * gamma + beta."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = x.std(dim=(2, 3), keepdim=True, unbiased=False)
    return (x - mean) / (std + 1e-3) * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)


def test_keras_instance_norm_is_the_keras_port_of_the_network(trrosetta_xaa, monkeypatch):
    x = one_hot(SEQ).unsqueeze(0)
    keras = TrRosetta(networks=trrosetta_xaa.networks, precision="fp32", instance_norm="keras")
    ours = keras(x)
    trained = trrosetta_xaa(x)
    # the reference: the default network with every instance norm swapped for keras_contrib's
    monkeypatch.setattr(F, "instance_norm", _keras_contrib_norm)
    port = trrosetta_xaa(x)
    for k in ours:
        assert (ours[k] - port[k]).abs().max() < 1e-5, k
        # a different network, but close: it is the same weights
        assert 1e-4 < (ours[k] - trained[k]).abs().max() < 0.2, k
    assert keras.with_msa(None).instance_norm == "keras"  # kept by derived predictors
    with pytest.raises(InvalidParameterError, match="instance norm"):
        TrRosetta(networks=trrosetta_xaa.networks, instance_norm="tensorflow")


def test_dropout_draws_from_the_seeded_global_generator_and_switches_off(trrosetta_xaa):
    x = one_hot(SEQ).unsqueeze(0)
    plain = trrosetta_xaa(x)
    tr = TrRosetta(networks=trrosetta_xaa.networks, precision="fp32")  # the same networks
    try:
        tr.set_dropout(True)
        torch.manual_seed(0)
        a = tr(x)
        torch.manual_seed(0)
        b = tr(x)
        c = tr(x)
    finally:
        tr.set_dropout(False)
    for k in plain:
        assert torch.equal(a[k], b[k]), k  # seeded: repeatable
        assert (a[k] - c[k]).abs().max() > 1e-3, k  # another draw, another prediction
        assert (a[k] - plain[k]).abs().max() > 1e-3, k
        assert torch.equal(trrosetta_xaa(x)[k], plain[k]), k  # off again for every predictor sharing them


@contextlib.contextmanager
def _batch_sizes(tr: TrRosetta) -> Iterator[list[int]]:
    """The batch of every network call of ``tr`` inside the block (forward pre-hooks, removed after)."""
    seen: list[int] = []
    hooks = [n.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[0])) for n in tr.networks]
    try:
        yield seen
    finally:
        for h in hooks:
            h.remove()


def test_inference_batch_splits_no_grad_calls_into_the_same_maps():
    x = F.one_hot(torch.randint(0, 20, (5, 12), generator=torch.Generator().manual_seed(0)), 20).float()
    whole = TrRosetta("xaa", precision="fp32", inference_batch=None)
    split = TrRosetta("xaa", precision="fp32", inference_batch=2)
    with _batch_sizes(split) as seen, torch.no_grad():
        a, b = whole(x), split(x)
    assert seen == [2, 2, 1]
    for k in a:
        assert a[k].shape == b[k].shape
        assert torch.allclose(a[k], b[k], atol=1e-5), k
    with _batch_sizes(split) as seen:
        split(x)  # with gradients (the optimiser's and the attribution methods' calls): never split
    assert seen == [5]
    split.set_dropout(True)  # its masks would come in other shapes
    try:
        with _batch_sizes(split) as seen, torch.no_grad():
            split(x)
    finally:
        split.set_dropout(False)
    assert seen == [5]


def test_inference_batch_keeps_the_bound_alignment_and_is_kept_by_derived_predictors(trrosetta_xaa):
    msa = parse_a3m_text(">q\nMKVLAAGIEE\n>a\nMKVLSAGLEE\n>b\nMRILAAGIDE\n")
    x = F.one_hot(torch.randint(0, 20, (3, 10), generator=torch.Generator().manual_seed(1)), 20).float()
    whole = TrRosetta(networks=trrosetta_xaa.networks, precision="fp32", inference_batch=None).with_msa(msa)
    split = TrRosetta(networks=trrosetta_xaa.networks, precision="fp32", inference_batch=1).with_msa(msa)
    assert split.inference_batch == 1 and whole.inference_batch is None
    with torch.no_grad():
        a, b = whole(x), split(x)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k
    assert TrRosetta(networks=trrosetta_xaa.networks).inference_batch == "auto"  # sized per length on CPU
    for bad in (0, -3, 2.5, "big", True):
        with pytest.raises(InvalidParameterError, match="inference batch"):
            TrRosetta(networks=trrosetta_xaa.networks, inference_batch=bad)


def test_auto_inference_batch_keeps_pair_activations_within_the_budget(trrosetta_xaa, monkeypatch):
    from protscramble.predictors.trrosetta import model

    for length in (20, 64, 100, 140):
        n = model.cpu_inference_batch(length)
        assert n * length**2 * 256 <= model.CPU_ACTIVATION_BYTES < (n + 1) * length**2 * 256
    assert model.cpu_inference_batch(2000) == 1  # one sequence even when it alone is bigger
    monkeypatch.setattr(model, "CPU_ACTIVATION_BYTES", 2 * 12 * 12 * 256)  # two length-12 sequences
    tr = TrRosetta(networks=trrosetta_xaa.networks, precision="fp32")
    x = F.one_hot(torch.randint(0, 20, (5, 12), generator=torch.Generator().manual_seed(2)), 20).float()
    with _batch_sizes(tr) as seen, torch.no_grad():
        tr(x)
    assert seen == [2, 2, 1]
