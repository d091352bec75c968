"""End-to-end CLI runs of predict/explain and every bad-input path."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from protscramble.cli import main

SEQ = "MKVLAAGIEELLKKLGSG"


def _run(capsys, *argv):
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_predict_writes_four_maps(tmp_path, capsys):
    out = tmp_path / "pred.npz"
    code, _, err = _run(capsys, "predict", "--sequence", SEQ, "--device", "cpu", "--out", str(out))
    assert code == 0, err
    maps = np.load(out)
    assert sorted(maps.files) == ["dist", "omega", "phi", "theta"]
    for name, bins in [("dist", 37), ("omega", 25), ("theta", 25), ("phi", 13)]:
        assert maps[name].shape == (len(SEQ), len(SEQ), bins)
        assert maps[name].dtype == np.float32
        assert np.allclose(maps[name].sum(-1), 1.0, atol=1e-4)


def test_predict_from_a3m_matches_reference(tmp_path, capsys):
    from conftest import shared_file

    a3m = shared_file("trrosetta", "TR005257.a3m")
    ref = np.load(shared_file("trrosetta", "TR005257_xaa_reference.npz"))
    out = tmp_path / "p.npz"
    code, _, err = _run(capsys, "predict", "--a3m", str(a3m), "--models", "xaa", "--out", str(out))
    assert code == 0, err
    assert np.abs(np.load(out)["theta"] - ref["theta"][0]).max() < 1e-3


def test_explain_end_to_end(tmp_path, capsys):
    out = tmp_path / "exp"
    code, _, err = _run(
        capsys, "explain", "--sequence", SEQ, "--steps", "4", "--samples", "2", "--eval-samples", "4",
        "--target-bits", "0.5", "--background", "uniform", "--seed", "3", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "importance.png", "importance.tsv", "logo.png", "pssm.tsv", "summary.json", "trace.tsv",
    ]  # fmt: skip
    lines = (out / "importance.tsv").read_text().splitlines()
    assert lines[0] == "position\tresidue\timportance"
    assert [ln.split("\t")[1] for ln in lines[1:]] == list(SEQ)
    assert all(float(ln.split("\t")[2]) >= 0 for ln in lines[1:])
    pssm = np.loadtxt(out / "pssm.tsv", skiprows=1, usecols=range(2, 22))
    assert pssm.shape == (len(SEQ), 20) and np.allclose(pssm.sum(1), 1, atol=1e-4)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["seed"] == 3 and summary["settings"]["steps"] == 4
    assert summary["settings"]["background"] == "uniform"
    assert summary["settings"]["versions"]["protscramble"]
    assert summary["eval_samples"] == 4 and summary["eval_kl_mean"] > 0
    # the progress line gives the mean with its standard error over the four samples
    assert summary["eval_kl_sem"] > 0
    assert f"eval KL {summary['eval_kl_mean']:.3f} ± {summary['eval_kl_sem']:.3f} (median" in err
    assert (out / "importance.png").read_bytes()[:4] == b"\x89PNG"


def test_explain_scrambling_the_alignment(tmp_path, capsys):
    a3m = _write(
        tmp_path, "t.a3m", ">q\nMKVLAAGIEELLKK\n>a\nMKVLSAGLEELLRK\n>b\nMRILAAGIDEVLKK\n>c\n-KVLAEGIEQLL--\n"
    )
    runs = {}
    for extra in ([], ["--scramble-msa", "--clip-value", "0.5"]):
        out = tmp_path / f"exp{len(extra)}"
        code, _, err = _run(
            capsys, "explain", "--a3m", a3m, "--steps", "3", "--samples", "2", "--eval-samples", "8",
            "--background", "msa", "--out", str(out), "--quiet", *extra,
        )  # fmt: skip
        assert code == 0, err
        runs[len(extra)] = json.loads((out / "summary.json").read_text())
    plain, scrambled = runs[0], runs[3]
    assert (plain["settings"]["scramble_msa"], plain["settings"]["clip_value"]) == (False, None)
    assert (scrambled["settings"]["scramble_msa"], scrambled["settings"]["clip_value"]) == (True, 0.5)
    # with the alignment scrambled as well, the same budget keeps less of the prediction
    assert scrambled["eval_kl_mean"] > plain["eval_kl_mean"]


def test_explain_multi_record_fasta_resumes(tmp_path, capsys):
    fasta = tmp_path / "two.fasta"
    fasta.write_text(f">a\n{SEQ}\n>b\n{SEQ[::-1]}\n")
    out = tmp_path / "many"
    args = [
        "explain",
        "--fasta",
        str(fasta),
        "--steps",
        "2",
        "--samples",
        "1",
        "--eval-samples",
        "2",
        "--out",
        str(out),
    ]
    code, _, err = _run(capsys, *args)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a", "b"]
    stamp = (out / "a" / "summary.json").stat().st_mtime_ns
    code, _, err = _run(capsys, *args)
    assert code == 0 and "already done" in err
    assert (out / "a" / "summary.json").stat().st_mtime_ns == stamp
    # a result written before --scramble-msa/--clip-value/--accumulation-steps existed still counts as done...
    summary = json.loads((out / "a" / "summary.json").read_text())
    for key in ("scramble_msa", "clip_value", "accumulation_steps"):
        del summary["settings"][key]
    (out / "a" / "summary.json").write_text(json.dumps(summary))
    code, _, err = _run(capsys, *args)
    assert code == 0 and "a: already done" in err
    # ...and other settings are recomputed
    code, _, err = _run(capsys, *args, "--clip-value", "0.5")
    assert code == 0 and "already done" not in err
    assert json.loads((out / "a" / "summary.json").read_text())["settings"]["clip_value"] == 0.5


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(p)


@pytest.mark.parametrize(
    "make_args,message",
    [
        (lambda t: ["--sequence", "MKV1LL"], "outside the alphabet"),
        (lambda t: ["--sequence", "MKBLL"], "outside the alphabet"),
        (lambda t: ["--sequence", "MKXLL"], "outside the alphabet"),
        (lambda t: ["--sequence", ""], "empty"),
        (lambda t: ["--a3m", _write(t, "u.a3m", ">q\nMKVL\n>s\nMKV\n")], "columns"),
        (lambda t: ["--fasta", str(t / "missing.fasta")], "not found"),
        (lambda t: ["--fasta", _write(t, "b.fasta", b"\x00\x01\x02binary")], "binary"),
        (lambda t: ["--sequence", SEQ, "--target-bits", "-1"], "target-bits"),
        (lambda t: ["--sequence", SEQ, "--samples", "0"], "at least 1"),
        (lambda t: ["--sequence", SEQ, "--models", "xzz"], "unknown trRosetta model"),
        (lambda t: ["--sequence", SEQ, "--background", "weird"], "background"),
        (lambda t: ["--sequence", SEQ, "--precision", "tf32", "--device", "cpu"], "tf32 needs a CUDA device"),
        (lambda t: ["--sequence", SEQ, "--scramble-msa"], "--scramble-msa needs an alignment"),
        (lambda t: ["--sequence", SEQ, "--clip-value", "0"], "must be > 0"),
        (lambda t: ["--sequence", SEQ, "--accumulation-steps", "3"], "accumulation steps must divide the 8"),
    ],
)
def test_bad_input_one_line_nonzero_no_output(tmp_path, capsys, make_args, message):
    out = tmp_path / "out"
    code, _, err = _run(capsys, "explain", *make_args(tmp_path), "--steps", "1", "--out", str(out))
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("protscramble: error:"), err
    assert message in lines[0]
    assert "Traceback" not in err
    assert not out.exists()


def test_length_that_cannot_fit_memory(tmp_path, capsys, monkeypatch):
    import protscramble.predictors.trrosetta.model as model

    monkeypatch.setattr(model, "available_memory", lambda device: 64 * 2**20)
    out = tmp_path / "out"
    code, _, err = _run(capsys, "explain", "--sequence", "A" * 400, "--steps", "1", "--out", str(out))
    assert code == 2 and "GiB" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_real_process_exit_code_and_no_traceback(tmp_path):
    out = tmp_path / "o.npz"
    proc = subprocess.run(
        [sys.executable, "-m", "protscramble.cli", "predict", "--sequence", "MKJ", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "Traceback" not in proc.stderr and not out.exists()


def test_demo_runs_on_the_bundled_example(tmp_path, capsys):
    out = tmp_path / "demo"
    code, _, err = _run(capsys, "demo", "--out", str(out), "--steps", "2", "--samples", "1", "--quiet")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["name"] == "FSD-1" and summary["length"] == 28
    assert (out / "logo.png").is_file() and (out / "importance.tsv").is_file()


def test_interrupted_explain_keeps_finished_batches_and_resumes_the_rest(
    tmp_path, trrosetta_xaa, monkeypatch
):
    import protscramble.scrambler as scrambler
    from protscramble.explain import Protein, explain_trrosetta

    proteins = [Protein("a", SEQ), Protein("b", SEQ[:14])]  # two lengths: two batches
    kwargs = {"steps": 30, "samples": 1, "eval_samples": 2, "predictor": trrosetta_xaa}
    ckpts = tmp_path / "ckpt"
    real_sample, calls = scrambler.sample_pssm, []

    def crash_in_b(*args, **kw):  # batch a takes 30 draws; b dies at its 28th update
        calls.append(1)
        if len(calls) == 58:
            raise RuntimeError("power cut")
        return real_sample(*args, **kw)

    monkeypatch.setattr(scrambler, "sample_pssm", crash_in_b)
    written = []
    with pytest.raises(RuntimeError, match="power cut"):
        explain_trrosetta(
            proteins, checkpoint_dir=ckpts, on_result=lambda r: written.append(r.name), **kwargs
        )
    assert written == ["a"]  # the finished batch was handed over before the crash
    assert len(list(ckpts.glob("*.ckpt"))) == 1  # b's state after 25 updates; a's was removed
    monkeypatch.setattr(scrambler, "sample_pssm", real_sample)

    _, b = explain_trrosetta(proteins, checkpoint_dir=ckpts, **kwargs)
    assert b.settings["resumed_at_step"] == 25 and not list(ckpts.glob("*.ckpt"))
    (fresh,) = explain_trrosetta([proteins[1]], **kwargs)
    np.testing.assert_array_equal(b.importance, fresh.importance)
    np.testing.assert_array_equal(b.eval_kl, fresh.eval_kl)


def test_sigterm_stops_a_run_like_ctrl_c(tmp_path, capsys, monkeypatch):
    """``kill`` or a scheduler's time limit: one line, status 143, nothing half-written, handler restored."""
    import os
    import signal

    import protscramble.scrambler as scrambler

    real_sample, calls = scrambler.sample_pssm, []

    def killed_at_update_5(*args, **kw):
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler raises before this returns
        return real_sample(*args, **kw)

    monkeypatch.setattr(scrambler, "sample_pssm", killed_at_update_5)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "demo"
    code, _, err = _run(capsys, "demo", "--out", str(out), "--steps", "50", "--samples", "1", "--quiet")
    assert code == 128 + signal.SIGTERM and len(calls) == 5
    assert err.strip().splitlines()[-1] == "protscramble: terminated (SIGTERM)" and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())
    assert signal.getsignal(signal.SIGTERM) == before
