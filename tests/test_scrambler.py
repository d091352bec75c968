"""The per-example scrambler on small predictors whose important positions are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _predictor_helpers import ArithmeticRecorder, PositionReader

from protscramble.errors import InvalidParameterError
from protscramble.io import load_checkpoint, save_checkpoint
from protscramble.scrambler import PerExampleScrambler


def _inputs(b=2, length=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.one_hot(torch.randint(0, 4, (b, length), generator=g), 4).float()


@pytest.mark.parametrize("mode,bits", [("inclusion", 0.5), ("occlusion", 1.5)])
def test_scrambler_finds_the_positions_the_predictor_reads(mode, bits):
    important = [2, 7, 9]
    x = _inputs()
    bg = torch.full((12, 4), 0.25)
    exp = PerExampleScrambler(
        PositionReader(important), mode=mode, target_bits=bits, steps=300, samples=4, learning_rate=0.05
    ).attribute(x, bg, seed=1)
    assert exp.importance.shape == (2, 12)
    for row in exp.importance:
        top = set(np.argsort(-row)[:3].tolist())
        assert top == set(important)
    # the conservation budget is met
    assert np.allclose(exp.bits, bits, atol=0.15)


def test_inclusion_keeps_and_occlusion_destroys():
    x = _inputs()
    bg = torch.full((12, 4), 0.25)
    pred = PositionReader([1, 5])
    inc = PerExampleScrambler(
        pred, mode="inclusion", target_bits=0.5, steps=150, samples=4, learning_rate=0.05
    )
    occ = PerExampleScrambler(
        pred, mode="occlusion", target_bits=1.0, steps=150, samples=4, learning_rate=0.05
    )
    d_inc = inc.attribute(x, bg).trace["divergence"]
    d_occ = occ.attribute(x, bg).trace["divergence"]
    assert d_inc[-10:].mean() < d_inc[:10].mean()
    assert d_occ[-10:].mean() > d_occ[:10].mean()
    assert d_occ[-10:].mean() > d_inc[-10:].mean()


def test_padding_is_never_scrambled_and_gets_zero_importance():
    x = _inputs()
    x[:, 10:] = 0.0
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[:, 10:] = False
    exp = PerExampleScrambler(PositionReader([0]), steps=20, samples=2).attribute(
        x, torch.full((12, 4), 0.25), position_mask=mask
    )
    assert np.all(exp.importance[:, 10:] == 0)
    assert np.all(exp.pssm[:, 10:] == 0)


def test_same_seed_same_result_and_init_scores_are_used():
    x = _inputs(1)
    bg = torch.full((12, 4), 0.25)
    sc = PerExampleScrambler(PositionReader([3]), steps=10, samples=2)
    a, b, c = sc.attribute(x, bg, seed=5), sc.attribute(x, bg, seed=5), sc.attribute(x, bg, seed=6)
    assert np.array_equal(a.importance, b.importance)
    assert not np.array_equal(a.importance, c.importance)
    init = torch.linspace(0.1, 3.0, 12)[None]
    one = PerExampleScrambler(PositionReader([3]), steps=1, samples=1, learning_rate=1e-6).attribute(
        x, bg, init_scores=init
    )
    assert np.allclose(one.importance, init.numpy(), atol=1e-2)


def test_logits_live_at_the_published_glorot_scale():
    """Adam moves each logit by about the learning rate, so their spread sets how fast positions reorder.

    The published per-example scrambler draws its (1, L) logit embedding glorot-normal:
    standard deviation sqrt(2 / (fan_in + fan_out)) = sqrt(2 / (1 + L)).
    """
    from protscramble.scrambler import ScoreParameterisation, published_logit_scale

    assert published_logit_scale(100) == pytest.approx((2 / 101) ** 0.5)
    mask = torch.ones(1, 12, dtype=torch.bool)
    mask[0, 10:] = False
    logits = torch.linspace(-2.0, 3.0, 12)[None] ** 2
    params = ScoreParameterisation(logits, mask, logit_scale=0.2)
    # the start reproduces softplus(logits) on scrambleable positions (to the norm's epsilon) ...
    expected = torch.nn.functional.softplus(logits) * mask
    assert torch.allclose(params(), expected, rtol=1e-3, atol=1e-6)
    # ... while the trainable logits have spread 0.2 there, so a step of 0.01 is 5% of it
    z = params.logits.detach()[mask]
    assert float(z.std(unbiased=False)) == pytest.approx(0.2, rel=1e-3)
    assert float(z.mean()) == pytest.approx(0.0, abs=1e-6)
    # a standardised start (the engine's random init) gives the published gamma = 1, beta = 0
    r = torch.randn(1, 12, generator=torch.Generator().manual_seed(0))
    w = mask.float()
    m = (r * w).sum() / w.sum()
    r = (r - m) / torch.sqrt((((r - m) * w) ** 2).sum() / w.sum() + 1e-5)
    std_start = ScoreParameterisation(r, mask, logit_scale=published_logit_scale(12))
    assert std_start.gamma.item() == pytest.approx(1.0, abs=1e-4)
    assert std_start.beta.item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(InvalidParameterError):
        ScoreParameterisation(logits, mask, logit_scale=0.0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"target_bits": -1.0}, "target bits"),
        ({"samples": 0}, "samples"),
        ({"steps": 0}, "steps"),
        ({"mode": "both"}, "mode"),
        ({"kl_direction": "sideways"}, "KL direction"),
    ],
)
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        PerExampleScrambler(PositionReader([0]), **kwargs)


def test_chunked_samples_give_the_same_gradients():
    x = _inputs(2)
    bg = torch.full((12, 4), 0.25)
    full = PerExampleScrambler(PositionReader([1, 4]), steps=5, samples=4).attribute(x, bg, seed=3)
    chunked = PerExampleScrambler(PositionReader([1, 4]), steps=5, samples=4, max_batch=2).attribute(
        x, bg, seed=3
    )
    assert np.allclose(full.importance, chunked.importance, atol=1e-5)


def test_batching_does_not_change_an_examples_result():
    x = _inputs(3, seed=4)
    bg = torch.full((12, 4), 0.25)
    sc = PerExampleScrambler(PositionReader([2, 6]), steps=15, samples=3)
    batch = sc.attribute(x, bg, seed=9)
    alone = sc.attribute(x[1:2], bg, seed=9)
    assert np.allclose(batch.importance[1], alone.importance[0], atol=1e-6)
    per_example = sc.attribute(x, bg, seed=[9, 10, 9])
    assert np.allclose(per_example.importance[[0, 2]], batch.importance[[0, 2]], atol=1e-6)
    assert not np.allclose(per_example.importance[1], batch.importance[1], atol=1e-3)


def test_every_backward_runs_inside_the_predictors_arithmetic_context():
    pred = ArithmeticRecorder([1, 4])
    PerExampleScrambler(pred, steps=5, samples=4, max_batch=2).attribute(
        _inputs(1), torch.full((12, 4), 0.25), seed=0
    )
    assert len(pred.seen) == 10 and all(pred.seen)  # 5 steps x 2 sample chunks
    assert not pred.active


class _Stop(Exception):
    pass


def test_interrupted_run_resumes_from_its_checkpoint_bit_for_bit(tmp_path):
    x = _inputs()
    bg = torch.full((12, 4), 0.25)
    pred = PositionReader([2, 7])
    scr = PerExampleScrambler(
        pred, mode="inclusion", target_bits=0.5, steps=12, samples=3, learning_rate=0.05
    )
    full = scr.attribute(x, bg, seed=4)

    ckpt = tmp_path / "run.ckpt"

    def crash_at_7(step, _):
        if step == 7:
            raise _Stop

    with pytest.raises(_Stop):
        scr.attribute(x, bg, seed=4, checkpoint=ckpt, checkpoint_every=3, callback=crash_at_7)
    assert ckpt.is_file()  # saved after updates 3 and 6; update 7 was lost with the crash
    seen = []
    resumed = scr.attribute(
        x, bg, seed=4, checkpoint=ckpt, checkpoint_every=3, callback=lambda s, _: seen.append(s)
    )
    assert seen[0] == 6 and resumed.settings["resumed_at_step"] == 6
    np.testing.assert_array_equal(resumed.importance, full.importance)
    for k in full.trace:
        np.testing.assert_array_equal(resumed.trace[k], full.trace[k])
    assert "resumed_at_step" not in full.settings

    # a finished run is not redone: the predictor is never called again
    class Refuses(PositionReader):
        def __call__(self, x):
            raise AssertionError("the finished run was recomputed")

    ref = {k: v.detach() for k, v in pred(x).items()}
    again = PerExampleScrambler(
        Refuses([2, 7]), mode="inclusion", target_bits=0.5, steps=12, samples=3, learning_rate=0.05
    ).attribute(x, bg, seed=4, checkpoint=ckpt, reference=ref)
    np.testing.assert_array_equal(again.importance, full.importance)

    # another run (seed) ignores the checkpoint, says so, and replaces it
    with pytest.warns(UserWarning, match="holds another run"):
        other = scr.attribute(x, bg, seed=5, checkpoint=ckpt)
    np.testing.assert_array_equal(other.importance, scr.attribute(x, bg, seed=5).importance)
    assert "resumed_at_step" not in other.settings
    with pytest.raises(InvalidParameterError, match="checkpoint interval"):
        scr.attribute(x, bg, checkpoint=ckpt, checkpoint_every=0)


def test_a_run_stopped_mid_update_saves_it_and_resumes_bit_for_bit(tmp_path):
    """Ctrl-C (or SIGTERM through the CLI) inside an update keeps every finished update."""
    x = _inputs()
    bg = torch.full((12, 4), 0.25)
    settings = dict(mode="inclusion", target_bits=0.5, steps=12, samples=4, learning_rate=0.05, max_batch=4)
    full = PerExampleScrambler(PositionReader([2, 7]), **settings).attribute(x, bg, seed=4)

    class StopsAtCall(PositionReader):
        """Interrupted during its ``stop_at``-th call: the second sample chunk of update 8."""

        def __init__(self, positions, stop_at):
            super().__init__(positions)
            self.calls, self.stop_at = 0, stop_at

        def __call__(self, x):
            self.calls += 1
            if self.calls == self.stop_at:
                raise KeyboardInterrupt
            return super().__call__(x)

    ckpt = tmp_path / "run.ckpt"
    # call 1 is the reference prediction; each update calls twice (2 examples x 4 samples in chunks of 4)
    with pytest.raises(KeyboardInterrupt):
        PerExampleScrambler(StopsAtCall([2, 7], 1 + 2 * 7 + 2), **settings).attribute(
            x, bg, seed=4, checkpoint=ckpt, checkpoint_every=100
        )
    assert load_checkpoint(ckpt)["step"] == 7  # no periodic save ran: the interrupt saved updates 1-7
    seen = []
    resumed = PerExampleScrambler(PositionReader([2, 7]), **settings).attribute(
        x, bg, seed=4, checkpoint=ckpt, callback=lambda s, _: seen.append(s)
    )
    assert seen[0] == 7 and resumed.settings["resumed_at_step"] == 7
    np.testing.assert_array_equal(resumed.importance, full.importance)
    for k in full.trace:
        np.testing.assert_array_equal(resumed.trace[k], full.trace[k])

    # stopped after an update's parameter step (here in the callback): that state cannot be saved as any
    # update's start, so the last periodic checkpoint stands and the resumed run is still exact
    def stop_after_update_8(step, _):
        if step == 7:
            raise KeyboardInterrupt

    late = tmp_path / "late.ckpt"
    with pytest.raises(KeyboardInterrupt):
        PerExampleScrambler(PositionReader([2, 7]), **settings).attribute(
            x, bg, seed=4, checkpoint=late, checkpoint_every=3, callback=stop_after_update_8
        )
    assert load_checkpoint(late)["step"] == 6
    resumed = PerExampleScrambler(PositionReader([2, 7]), **settings).attribute(
        x, bg, seed=4, checkpoint=late
    )
    np.testing.assert_array_equal(resumed.importance, full.importance)

    # stopped during the first update of a resumed run: nothing new, the checkpoint is left alone
    again = tmp_path / "again.ckpt"
    for stop_at in (1 + 2 * 7 + 2, 2):
        with pytest.raises(KeyboardInterrupt):
            PerExampleScrambler(StopsAtCall([2, 7], stop_at), **settings).attribute(
                x, bg, seed=4, checkpoint=again, checkpoint_every=100
            )
        if stop_at != 2:
            before = again.stat().st_mtime_ns
    assert again.stat().st_mtime_ns == before and load_checkpoint(again)["step"] == 7


def test_checkpoint_tolerates_summation_order_not_another_reference(tmp_path):
    """A reference that differs in the last bits (another thread count) resumes; another does not."""
    x = _inputs()
    bg = torch.full((12, 4), 0.25)
    pred = PositionReader([2, 7])
    scr = PerExampleScrambler(pred, mode="inclusion", target_bits=0.5, steps=8, samples=2, learning_rate=0.05)
    ref = {k: v.detach() for k, v in pred(x).items()}
    ckpt = tmp_path / "run.ckpt"

    def crash_at_5(step, _):
        if step == 5:
            raise _Stop

    with pytest.raises(_Stop):
        scr.attribute(x, bg, seed=1, reference=ref, checkpoint=ckpt, checkpoint_every=2, callback=crash_at_5)
    g = torch.Generator().manual_seed(3)
    last_bits = {k: v * (1 + 1e-6 * torch.randn(v.shape, generator=g)) for k, v in ref.items()}
    assert any(not torch.equal(last_bits[k], ref[k]) for k in ref)
    resumed = scr.attribute(x, bg, seed=1, reference=last_bits, checkpoint=ckpt, checkpoint_every=2)
    assert resumed.settings["resumed_at_step"] == 6  # saved after updates 2, 4 and 6

    # the checkpoint now holds the finished run; another input's prediction must not reuse it
    other_ref = {k: v.flip(-1) for k, v in ref.items()}  # another input's prediction
    with pytest.warns(UserWarning, match="holds another run"):
        fresh = scr.attribute(x, bg, seed=1, reference=other_ref, checkpoint=ckpt, checkpoint_every=2)
    assert "resumed_at_step" not in fresh.settings


def test_accumulated_groups_without_clipping_are_the_plain_update():
    # Two groups of two samples average to the four-sample mean: only clipping tells them apart.
    x, bg = _inputs(2), torch.full((12, 4), 0.25)
    plain = PerExampleScrambler(PositionReader([1, 4]), steps=20, samples=4, max_batch=4).attribute(
        x, bg, seed=3
    )
    grouped = PerExampleScrambler(
        PositionReader([1, 4]), steps=20, samples=4, max_batch=4, accumulation_steps=2
    ).attribute(x, bg, seed=3)
    assert np.allclose(plain.importance, grouped.importance, atol=1e-4)
    assert grouped.settings["accumulation_steps"] == 2


class _GradientRecorder(torch.optim.Adam):
    """Adam that keeps the gradient it is handed at every update."""

    seen: list[torch.Tensor] = []

    def step(self, closure=None):
        _GradientRecorder.seen.append(
            torch.cat([p.grad.flatten() for g in self.param_groups for p in g["params"]])
        )
        return super().step(closure)


def test_each_group_is_clipped_before_the_groups_are_averaged(monkeypatch):
    # Keras' AdamAccumulate with clipvalue (the published trRosetta runs): each group's gradient is
    # clipped, then the groups are averaged. At a tiny clip every clipped element is +-c, so the
    # average is 0 where the groups disagree in sign; clipping the mean instead gives +-c everywhere.
    monkeypatch.setattr(torch.optim, "Adam", _GradientRecorder)
    x, bg, c = _inputs(1, length=12), torch.full((12, 4), 0.25), 1e-7
    seen = _GradientRecorder.seen
    seen.clear()
    PerExampleScrambler(PositionReader([1, 4, 8]), steps=6, samples=4, clip_value=c).attribute(x, bg, seed=5)
    whole = torch.cat(seen)
    seen.clear()
    PerExampleScrambler(
        PositionReader([1, 4, 8]), steps=6, samples=4, clip_value=c, accumulation_steps=2
    ).attribute(x, bg, seed=5)
    grouped = torch.cat(seen)
    nonzero = whole != 0
    assert torch.allclose(whole[nonzero].abs(), torch.tensor(c))
    assert torch.all(((grouped.abs() - c).abs() < 1e-12) | (grouped == 0))
    assert (grouped[nonzero] == 0).any()  # some elements where the two groups pulled opposite ways


def test_accumulation_steps_must_divide_the_samples():
    with pytest.raises(InvalidParameterError, match="accumulation steps"):
        PerExampleScrambler(PositionReader([0]), samples=8, accumulation_steps=3)
    with pytest.raises(InvalidParameterError, match="accumulation steps"):
        PerExampleScrambler(PositionReader([0]), accumulation_steps=0)


def _crash_at(stop_step: int, draw: bool = False):
    """A progress callback that stops the run after update ``stop_step`` (drawing from the global
    generator at every update when ``draw``)."""

    def callback(step, _):
        if draw:
            torch.rand(3)
        if step == stop_step:
            raise _Stop

    return callback


class DropoutReader(PositionReader):
    """PositionReader whose logits pass through dropout drawn from torch's global generator."""

    def __call__(self, x):
        logits = 6.0 * x[:, self.positions, :]
        return {"y": torch.softmax(torch.nn.functional.dropout(logits, p=0.5, training=True), -1)}


def test_a_stochastic_predictor_repeats_and_resumes_exactly_and_leaves_the_callers_generator(tmp_path):
    x = _inputs()
    bg = torch.full((12, 4), 0.25)
    scr = PerExampleScrambler(
        DropoutReader([2, 7]), mode="inclusion", target_bits=0.5, steps=12, samples=3, learning_rate=0.05
    )
    torch.manual_seed(123)
    caller_state = torch.get_rng_state()
    full = scr.attribute(x, bg, seed=4)
    assert torch.equal(torch.get_rng_state(), caller_state)  # the caller's stream is not consumed
    torch.rand(5)  # another global state: the same result all the same
    np.testing.assert_array_equal(scr.attribute(x, bg, seed=4).importance, full.importance)
    deterministic = PerExampleScrambler(
        PositionReader([2, 7]), mode="inclusion", target_bits=0.5, steps=12, samples=3, learning_rate=0.05
    ).attribute(x, bg, seed=4)
    assert not np.array_equal(deterministic.importance, full.importance)  # the dropout did act

    # interrupted after update 7 and resumed from update 6: the dropout masks of updates 6-11 are
    # those of the uninterrupted run (each update's draws are seeded by the update, not the history)
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(_Stop):  # whatever the callback draws in between changes nothing
        scr.attribute(x, bg, seed=4, checkpoint=ckpt, checkpoint_every=3, callback=_crash_at(7, draw=True))
    resumed = scr.attribute(x, bg, seed=4, checkpoint=ckpt, checkpoint_every=3)
    assert resumed.settings["resumed_at_step"] == 6
    np.testing.assert_array_equal(resumed.importance, full.importance)
    for k in full.trace:
        np.testing.assert_array_equal(resumed.trace[k], full.trace[k])


def _stopped_at_update_4(ckpt):
    """A 6-update run (seed 1) stopped after update 4, its checkpoint (update 4) in ``ckpt``."""
    x = _inputs()
    bg = torch.full((12, 4), 0.25)
    scr = PerExampleScrambler(
        PositionReader([2, 7]), mode="inclusion", target_bits=0.5, steps=6, samples=3, learning_rate=0.05
    )
    with pytest.raises(_Stop):
        scr.attribute(x, bg, seed=1, checkpoint=ckpt, checkpoint_every=2, callback=_crash_at(4))
    return scr, x, bg


def test_a_checkpoint_under_another_run_key_is_another_run(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    scr, x, bg = _stopped_at_update_4(ckpt)
    with pytest.warns(UserWarning, match="holds another run"):
        keyed = scr.attribute(x, bg, seed=1, checkpoint=ckpt, run_key={"optimiser_dropout": True})
    assert "resumed_at_step" not in keyed.settings
    # the same key resumes
    with pytest.raises(_Stop):
        scr.attribute(
            x, bg, seed=1, checkpoint=ckpt, checkpoint_every=2, callback=_crash_at(4), run_key={"k": 1}
        )
    again = scr.attribute(x, bg, seed=1, checkpoint=ckpt, run_key={"k": 1})
    assert again.settings["resumed_at_step"] == 4


def test_a_checkpoint_from_another_kind_of_device_is_another_run(tmp_path):
    # A CUDA generator's state is 16 bytes (Philox seed and offset), a CPU one's 5,056 (Mersenne
    # twister): a run saved on a GPU cannot continue its random streams on a CPU, or back.
    ckpt = tmp_path / "run.ckpt"
    scr, x, bg = _stopped_at_update_4(ckpt)
    state = load_checkpoint(ckpt)
    state["generators"] = [torch.zeros(16, dtype=torch.uint8) for _ in state["generators"]]
    save_checkpoint(ckpt, state)
    with pytest.warns(UserWarning, match="another kind of device"):
        restarted = scr.attribute(x, bg, seed=1, checkpoint=ckpt)
    assert "resumed_at_step" not in restarted.settings
    np.testing.assert_array_equal(restarted.importance, scr.attribute(x, bg, seed=1).importance)
    assert load_checkpoint(ckpt)["generators"][0].numel() == torch.Generator().get_state().numel()
