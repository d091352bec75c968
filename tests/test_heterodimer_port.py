"""The torch port of the published heterodimer binder RNN: exactness, loaders, adapter."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import shared_file

from protscramble.errors import (
    InputFileError,
    InvalidParameterError,
    InvalidSequenceError,
    WeightsNotFoundError,
)
from protscramble.faithfulness import roc_auc
from protscramble.predictors.base import Predictor
from protscramble.predictors.heterodimer import (
    ALPHABET,
    CHAIN_LENGTH,
    PAIR_LENGTH,
    HeterodimerPredictor,
    HeterodimerRNN,
    encode_pairs,
    load_keras_h5,
    load_model,
    load_state_dict,
    read_pairs_tsv,
    save_state_dict,
    validate_chain,
)


def shared(name: str) -> Path:
    return shared_file("heterodimer", name)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the RNN's many small ops: one thread is faster and immune to busy neighbours
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def published() -> HeterodimerPredictor:
    return HeterodimerPredictor(load_keras_h5(shared("ppi_rnn_keras.h5")))


# ----------------------------------------------------------------------------- exactness (reference data)


def test_dhd154_matches_the_keras_reference(published: HeterodimerPredictor) -> None:
    example = json.loads(shared("DHD_154.json").read_text())
    p = published.predict_pairs([example["chain_1"]], [example["chain_2"]])
    assert abs(float(p[0]) - example["reference_binding_probability"]) < 1e-4


def test_roc_auc_on_the_dev_pairs(published: HeterodimerPredictor) -> None:
    table = read_pairs_tsv(shared("coiled_coil_pairs_dev.tsv"))
    assert len(table) == 3000 and table.labels is not None
    p = published.predict_pairs(table.chains_1, table.chains_2)
    assert roc_auc(p, table.labels) >= 0.955


def test_h5_to_pt_round_trip_is_identical(published: HeterodimerPredictor, tmp_path: Path) -> None:
    table = read_pairs_tsv(shared("coiled_coil_pairs_dev.tsv")).subset(range(16))
    x, _ = table.encode()
    pt = tmp_path / "heterodimer.pt"
    save_state_dict(published.model, pt)
    reloaded = HeterodimerPredictor(load_model(pt))
    with torch.no_grad():
        assert torch.equal(published.logit(x), reloaded.logit(x))


# ----------------------------------------------------------------------------- the converter, without reference data


def _write_keras_like_h5(model: HeterodimerRNN, path: Path) -> None:
    """Write ``model`` in the Keras/cuDNN layout (the inverse of the loader's conversion)."""
    units = 64
    with h5py.File(path, "w") as f:
        g = f.create_group("model_weights")
        for direction, sfx in (("forward", ""), ("backward", "_reverse")):
            w_ih = getattr(model.gru, f"weight_ih_l0{sfx}").detach().numpy()
            w_hh = getattr(model.gru, f"weight_hh_l0{sfx}").detach().numpy()
            b_ih = getattr(model.gru, f"bias_ih_l0{sfx}").detach().numpy()
            b_hh = getattr(model.gru, f"bias_hh_l0{sfx}").detach().numpy()
            r, z, n = (slice(k * units, (k + 1) * units) for k in range(3))
            kernel = np.concatenate([w_ih[s].reshape(-1, units) for s in (z, r, n)], axis=1)
            recurrent = np.concatenate([w_hh[s] for s in (z, r, n)], axis=1)
            bias = np.concatenate([b_ih[z], b_ih[r], b_ih[n], b_hh[z], b_hh[r], b_hh[n]])
            prefix = f"bidirectional_1/bidirectional_1/{direction}_cu_dnngru_1"
            g[f"{prefix}/kernel:0"] = kernel
            g[f"{prefix}/recurrent_kernel:0"] = recurrent
            g[f"{prefix}/bias:0"] = bias
        for layer in ("dense_1", "dense_2"):
            lin = getattr(model, layer)
            g[f"{layer}/{layer}/kernel:0"] = lin.weight.detach().numpy().T
            g[f"{layer}/{layer}/bias:0"] = lin.bias.detach().numpy()


def test_keras_layout_loader_reproduces_a_random_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = HeterodimerRNN().eval()
    _write_keras_like_h5(model, tmp_path / "m.h5")
    loaded = load_keras_h5(tmp_path / "m.h5")
    x, _ = encode_pairs(["DEVKRLSTNHAIGPQYWMF", "LLEEKK"], ["KKEELL", "AIGPQ"])
    a, b = HeterodimerPredictor(model), HeterodimerPredictor(loaded)
    with torch.no_grad():
        torch.testing.assert_close(a.logit(x), b.logit(x), rtol=0, atol=1e-6)
    assert load_model(tmp_path / "m.h5").state_dict().keys() == model.state_dict().keys()


def test_weight_loading_errors(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError):
        load_model(tmp_path / "absent.h5")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputFileError):
        load_model(junk)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["model_weights/dense_1/dense_1/kernel:0"] = np.zeros((3, 3))
    with pytest.raises(InputFileError, match="lacks the weight"):
        load_model(tmp_path / "other.h5")
    torch.save({"gru.weight_ih_l0": torch.zeros(3)}, tmp_path / "partial.pt")
    with pytest.raises(InputFileError):
        load_state_dict(tmp_path / "partial.pt")
    with pytest.raises(WeightsNotFoundError, match="weights file not found"):
        load_state_dict(tmp_path / "absent.pt")
    with pytest.raises(InputFileError, match="not a readable weights file"):
        load_state_dict(junk)
    torch.save([torch.zeros(3)], tmp_path / "list.pt")
    with pytest.raises(InputFileError, match="does not hold a weights file"):
        load_state_dict(tmp_path / "list.pt")


# ----------------------------------------------------------------------------- encoding and the adapter


def test_encoding_layout_and_padding() -> None:
    x, mask = encode_pairs(["DE"], ["F"])
    assert x.shape == (1, PAIR_LENGTH, len(ALPHABET))
    assert x[0, 0, 0] == 1 and x[0, 1, 1] == 1 and x[0, CHAIN_LENGTH, ALPHABET.index("F")] == 1
    assert mask[0].sum() == 3 and mask[0, CHAIN_LENGTH] and not mask[0, 2]
    assert x[0, ~mask[0]].abs().sum() == 0  # padding rows are all-zero


def test_chain_validation_messages() -> None:
    assert validate_chain(" devk ") == "DEVK"
    with pytest.raises(InvalidSequenceError, match="C"):
        validate_chain("DECK", "row 3 amino_seq_1")
    with pytest.raises(InvalidSequenceError, match="at most 81"):
        validate_chain("D" * 82)


def test_adapter_follows_the_predictor_protocol() -> None:
    torch.manual_seed(1)
    pred = HeterodimerPredictor(HeterodimerRNN())
    assert isinstance(pred, Predictor)
    x, _ = encode_pairs(["DEVKR", "LLKE"], ["KKEE", "AIGPQ"])
    out = pred(x.requires_grad_(True))["binding"]
    assert out.shape == (2, 1, 2)
    torch.testing.assert_close(out.sum(-1), torch.ones(2, 1))
    out[:, 0, 1].sum().backward()  # gradients reach the one-hot input
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(InvalidParameterError):
        pred.logit(torch.zeros(1, 10, 19))
