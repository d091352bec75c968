"""Pair scramblers: per-example, trained networks (siamese/joint), checkpoints, backgrounds.

A toy pair predictor that only reads two residues (one per chain) stands in
for the RNN, so these tests need no reference data and run in seconds.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from protscramble.errors import InvalidParameterError
from protscramble.io import load_checkpoint
from protscramble.pairs import (
    JointPairScrambler,
    PairScrambler,
    SiamesePairScrambler,
    build_pair_network,
    explain_per_example,
    explain_with_network,
    parse_exclusions,
    select_subset,
    split_indices,
    train_pair_scrambler,
)
from protscramble.predictors.heterodimer import (
    ALPHABET,
    CHAIN_LENGTH,
    PAIR_LENGTH,
    PairBackground,
    PairTable,
    encode_pairs,
    uniform_background,
)
from protscramble.scrambler_network import (
    ScramblerTrainer,
    SequenceScrambler,
    TrainingData,
    TrainingSettings,
    multi_scale_mask_dropout,
)

K1, K2 = 3, CHAIN_LENGTH + 5  # the residues the toy predictor reads
SMALL = {"channels": 8, "dilations": (1, 2), "blocks_per_group": 1}
SMALL_CFG = {"dilations": (1, 2), "blocks_per_group": 1}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # many tiny ops: one thread is faster and immune to busy neighbours
    yield
    torch.set_num_threads(before)


class ToyPairPredictor:
    """p(binding) is high only with L at chain-1 position 4 and E at chain-2 position 6."""

    alphabet = ALPHABET
    device = torch.device("cpu")

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logit = 4.0 * (x[:, K1, ALPHABET.index("L")] + x[:, K2, ALPHABET.index("E")]) - 4.0
        p = torch.sigmoid(logit)
        return {"binding": torch.stack([1 - p, p], -1).unsqueeze(1)}

    def predict(self, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        with torch.no_grad():
            return self(x)["binding"][:, 0, 1].numpy()


def toy_table(n: int = 24, seed: int = 0) -> PairTable:
    rng = np.random.default_rng(seed)
    letters = np.array(list(ALPHABET))
    c1, c2 = [], []
    for i in range(n):
        a = list(rng.choice(letters, rng.integers(20, 30)))
        b = list(rng.choice(letters, rng.integers(20, 30)))
        if i % 2 == 0:  # binders carry both key residues
            a[K1], b[K2 - CHAIN_LENGTH] = "L", "E"
        c1.append("".join(a))
        c2.append("".join(b))
    table = PairTable.from_chains(c1, c2, source="toy")
    table.labels = np.array([1 - i % 2 for i in range(n)])
    return table


# ----------------------------------------------------------------------------- per-example


@pytest.mark.parametrize("mode", ["inclusion", "occlusion"])
def test_per_example_finds_both_key_residues(mode: str) -> None:
    table = toy_table(2)
    x, mask = table.subset([0]).encode()
    bg = uniform_background().unsqueeze(0)
    exp = explain_per_example(ToyPairPredictor(), x, mask, bg, mode=mode, steps=400, samples=4, seed=0)
    top3 = set(np.argsort(-exp.importance[0])[:3].tolist())  # 0.25 bits x ~50 residues buys ~3 residues
    assert {K1, K2} <= top3
    assert (exp.importance[0][~mask[0].numpy()] == 0).all()
    assert np.array_equal(exp.pssm[0][~mask[0].numpy()], x[0][~mask[0]].numpy())  # padding untouched
    assert exp.method == f"scrambler_per_example_{mode}"


def test_occlusion_towards_the_inverted_label_also_runs() -> None:
    x, mask = toy_table(2).subset([0]).encode()
    exp = explain_per_example(
        ToyPairPredictor(), x, mask, uniform_background().unsqueeze(0), mode="occlusion",
        steps=5, samples=2, occlusion_reference="inverted-label",
    )  # fmt: skip
    assert exp.importance.shape == (1, PAIR_LENGTH)
    with pytest.raises(InvalidParameterError):
        explain_per_example(
            ToyPairPredictor(), x, mask, uniform_background().unsqueeze(0), mode="occlusion",
            steps=1, occlusion_reference="label",
        )  # fmt: skip


# ----------------------------------------------------------------------------- networks


@pytest.mark.parametrize("kind", ["siamese", "joint"])
def test_networks_score_residues_only_and_honour_exclusions(kind: str) -> None:
    torch.manual_seed(0)
    net = build_pair_network(kind, **SMALL)
    assert isinstance(net, SiamesePairScrambler if kind == "siamese" else JointPairScrambler)
    table = toy_table(3)
    x, mask = table.encode()
    scores = net(x, mask, label=torch.ones(3))
    assert scores.shape == (3, PAIR_LENGTH) and (scores >= 0).all()
    assert (scores[~mask] == 0).all()
    lengths = [(len(a), len(b)) for a, b in zip(table.chains_1, table.chains_2, strict=True)]
    keep = parse_exclusions("1:4,2:6-7", lengths)
    excluded = net(x, mask, keep, torch.ones(3))
    assert (excluded[:, [K1, K2, K2 + 1]] == 0).all() and (excluded[:, K1 + 1] > 0).all()


def test_parse_exclusions_errors() -> None:
    with pytest.raises(InvalidParameterError, match="CHAIN:POS"):
        parse_exclusions("4", [(10, 10)])
    with pytest.raises(InvalidParameterError, match="chain must be 1 or 2"):
        parse_exclusions("3:1", [(10, 10)])
    with pytest.raises(InvalidParameterError, match="past the end"):
        parse_exclusions("2:11", [(10, 10)])
    assert parse_exclusions(None, [(10, 10)]) is None


def test_multi_scale_mask_dropout() -> None:
    mask = torch.ones(64, 50, dtype=torch.bool)
    mask[:, 40:] = False
    keep = multi_scale_mask_dropout(mask, generator=torch.Generator().manual_seed(0))
    assert keep.shape == mask.shape and not keep[:, 40:].any()
    dropped = 1 - keep[:, :40].float().mean().item()
    assert 0.05 < dropped < 0.5
    none = multi_scale_mask_dropout(mask, max_rate=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(none, mask)


def test_generic_sequence_scrambler_shapes() -> None:
    net = SequenceScrambler(4, channels=4, dilations=(1,), blocks_per_group=1)
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (2, 9)), 4).float()
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 7:] = False
    s = net(x, mask)
    assert s.shape == (2, 9) and (s[1, 7:] == 0).all()
    assert net.config()["kind"] == "sequence"


# ----------------------------------------------------------------------------- training


def _settings(**kw: object) -> TrainingSettings:
    base = TrainingSettings(epochs=2, batch_size=8, samples=2, learning_rate=1e-2, seed=0)
    return replace(base, **kw)


@pytest.mark.parametrize("kind", ["siamese", "joint"])
def test_tiny_training_run_and_save_load(kind: str, tmp_path: Path) -> None:
    table = toy_table(24)
    scrambler, history = train_pair_scrambler(
        ToyPairPredictor(), table, kind=kind, network_config=SMALL_CFG, channels=8, settings=_settings(),
        validation_fraction=0.25,
    )  # fmt: skip
    assert len(history.train_loss) == 2 and len(history.val_loss) == 2
    assert all(np.isfinite(history.val_bits))
    n_train = scrambler.meta["n_train"]
    assert 0 < n_train < 24 and n_train + scrambler.meta["n_validation"] == 24
    assert len(scrambler.training_pairs) == n_train
    path = tmp_path / "s.pt"
    scrambler.save(path)
    again = PairScrambler.load(path)
    x, mask = table.encode()
    a = explain_with_network(ToyPairPredictor(), scrambler, x, mask)
    b = explain_with_network(ToyPairPredictor(), again, x, mask)
    assert np.array_equal(a.importance, b.importance)
    assert a.method == "scrambler_network_inclusion" and a.bits.shape == (24,)
    tuned = explain_per_example(
        ToyPairPredictor(), x[:2], mask[:2], again.background.for_inputs(x[:2]), steps=2, samples=2,
        init_scores=a.importance[:2],
    )  # fmt: skip
    assert tuned.method == "scrambler_fine_tuned_inclusion"


def test_training_learns_the_key_residues() -> None:
    table = toy_table(48)
    st = _settings(epochs=6, samples=4, mode="inclusion", target_bits=0.5, mask_dropout=False)
    scrambler, _ = train_pair_scrambler(
        ToyPairPredictor(), table, network_config=SMALL_CFG, channels=8, settings=st, validation_fraction=0.0,
        background="uniform",
    )  # fmt: skip
    x, mask = table.subset([0, 2, 4]).encode()
    imp = explain_with_network(ToyPairPredictor(), scrambler, x, mask).importance
    ranks = np.argsort(-imp, axis=1)[:, :6]
    assert all(K1 in r and K2 in r for r in ranks)


def test_interrupted_training_resumes_to_the_same_weights(tmp_path: Path) -> None:
    table = toy_table(16)
    st = _settings(epochs=2)
    full, _ = train_pair_scrambler(
        ToyPairPredictor(), table, network_config=SMALL_CFG, channels=8, settings=st
    )
    ckpt = tmp_path / "run.ckpt"
    train_pair_scrambler(
        ToyPairPredictor(), table, network_config=SMALL_CFG, channels=8, settings=st, checkpoint_path=ckpt,
        stop_after_steps=3,
    )  # fmt: skip
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 1 and state["step_in_epoch"] == 1 and not state["complete"]
    resumed, history = train_pair_scrambler(
        ToyPairPredictor(), table, network_config=SMALL_CFG, channels=8, settings=st, checkpoint_path=ckpt
    )
    assert len(history.train_loss) == 2
    for k, v in full.network.state_dict().items():
        assert torch.equal(v, resumed.network.state_dict()[k]), k
    with pytest.raises(InvalidParameterError, match="different settings"):
        train_pair_scrambler(
            ToyPairPredictor(), table, network_config=SMALL_CFG, channels=8,
            settings=_settings(epochs=2, target_bits=1.0), checkpoint_path=ckpt,
        )  # fmt: skip


def test_split_is_consistent_across_subsets() -> None:
    table = toy_table(200)
    train, val = split_indices(table, 0.2, seed=3)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 200
    assert 20 < len(val) < 60
    sub = np.arange(0, 200, 2)
    sub_train, sub_val = split_indices(table.subset(sub), 0.2, seed=3)
    assert np.array_equal(sub[sub_val], np.intersect1d(sub, val))
    assert not np.array_equal(split_indices(table, 0.2, seed=4)[1], val)


def test_training_settings_are_validated() -> None:
    with pytest.raises(InvalidParameterError):
        _settings(mode="both").validate()
    with pytest.raises(InvalidParameterError):
        _settings(samples=0).validate()
    with pytest.raises(InvalidParameterError):
        split_indices(toy_table(4), 1.0, 0)
    trainer_data = TrainingData(
        torch.zeros(0, 4, 2),
        torch.zeros(0, 4, dtype=torch.bool),
        torch.zeros(0, 4, 2),
        {"y": torch.zeros(0, 1, 2)},
    )
    net = SequenceScrambler(2, channels=2, dilations=(1,), blocks_per_group=1)
    with pytest.raises(InvalidParameterError, match="no training examples"):
        ScramblerTrainer(ToyPairPredictor(), net, _settings()).fit(trainer_data)


# ----------------------------------------------------------------------------- backgrounds


def test_position_specific_background_per_chain_length() -> None:
    table = PairTable.from_chains(["DDE", "DDE", "KKKK"], ["EEE", "DDD", "KKKK"])
    bg = PairBackground.estimate(table.chains_1, table.chains_2, pseudocount=0.1)
    assert bg.kind == "position"
    x, _ = encode_pairs(["DDE"], ["KKKK"])
    b = bg.for_inputs(x)[0]
    assert b.shape == (PAIR_LENGTH, len(ALPHABET))
    torch.testing.assert_close(b.sum(-1), torch.ones(PAIR_LENGTH))
    assert (b > 0).all()
    d, e, k = (ALPHABET.index(c) for c in "DEK")
    # length-3 chains: position 0 is D in 3 of 4 chains, E in 1: (3 + 0.1) / (4 + 1.9)
    assert b[0, d].item() == pytest.approx(3.1 / 5.9)
    assert b[0, e].item() == pytest.approx(1.1 / 5.9)
    assert b[CHAIN_LENGTH, k].item() == pytest.approx(2.1 / 3.9)  # the length-4 table
    torch.testing.assert_close(b[10], uniform_background()[10])  # padding row: uniform
    # A length never seen falls back to all chains at that position.
    x5, _ = encode_pairs(["DDDDD"], ["DDDDD"])
    assert bg.for_inputs(x5)[0, 0, d].item() == pytest.approx((3 + 0.1) / (6 + 1.9))
    assert PairBackground.from_state(bg.state()).table.equal(bg.table)
    assert PairBackground().for_inputs(x)[0].equal(uniform_background())
    with pytest.raises(InvalidParameterError):
        PairBackground.estimate(table.chains_1, table.chains_2, pseudocount=0.0)


def test_select_subset() -> None:
    table = toy_table(6)  # even rows carry both key residues (label 1, predicted binders)
    pred = ToyPairPredictor()
    assert select_subset(pred, table, "all").tolist() == list(range(6))
    assert select_subset(pred, table, "binders").tolist() == [0, 2, 4]
    table.labels = np.array([1, 1, 0, 0, 1, 1])
    assert select_subset(pred, table, "predicted-binders").tolist() == [0, 4]
    table.labels = None
    assert select_subset(pred, table, "predicted-binders").tolist() == [0, 2, 4]
    with pytest.raises(InvalidParameterError, match="interacts"):
        select_subset(pred, table, "binders")
    with pytest.raises(InvalidParameterError):
        select_subset(pred, table, "some")
