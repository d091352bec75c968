"""``protscramble batch``: manifests, config, resume after a kill, engines, campaign summary.

The end-to-end tests run the real trRosetta network (fp32, CPU) at tiny
settings (3 steps, 1 sample, lengths 12-16), so a whole campaign takes seconds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from _batch_helpers import (
    BROKEN_IDS,
    GOOD_IDS,
    TINY_CONFIG,
    design_outputs,
    final_states,
    leftovers,
    write_full_campaign,
    write_structure,
)
from conftest import shared_file

from protscramble.batch import (
    BatchConfig,
    build_config,
    load_config,
    make_buckets,
    read_manifest,
    run_batch,
)
from protscramble.batch.status import StatusLog, StatusRecord
from protscramble.batch.summary import to_html
from protscramble.cli import main
from protscramble.errors import InputFileError, InvalidParameterError

# ---------------------------------------------------------------- manifest


def test_manifest_rows_are_validated_one_by_one(tmp_path):
    manifest, _ = write_full_campaign(tmp_path)
    parsed = read_manifest(manifest)
    assert [d.id for d in parsed.designs] == [*GOOD_IDS, "bad_chain"]
    reasons = {r.id: r.reason for r in parsed.invalid}
    assert set(reasons) == set(BROKEN_IDS) - {"bad_chain"}  # a wrong chain shows up at compare time
    assert "outside the alphabet" in reasons["bad_letters"]
    assert "not found" in reasons["missing_file"] and str(tmp_path / "inputs") in reasons["missing_file"]
    assert "needs its chain" in reasons["no_chain"]
    assert "duplicate id 'dup'" in reasons["dup"]
    by_id = {d.id: d for d in parsed.designs}
    assert by_id["b2"].sequence == "MSEEIKKLAEKLLG"  # the record named after the design
    assert by_id["m1"].msa is not None and by_id["m1"].msa.depth == 3
    assert by_id["s2"].sequence == by_id["s1"].sequence  # read from the structure's chain
    assert by_id["s1"].structure == str((tmp_path / "inputs" / "s.pdb").resolve())
    assert by_id['odd <id> & "x"'].folder.startswith("odd_id_x-")
    assert parsed.ids[:2] == ["a1", "a2"] and parsed.ids.count("dup") == 1


@pytest.mark.parametrize(
    ("header", "message"),
    [("name\tsequence", "unknown manifest column(s) 'name'"), ("sequence", "no 'id' column")],
)
def test_manifest_header_errors_are_fatal(tmp_path, header, message):
    path = tmp_path / "m.tsv"
    path.write_text(f"{header}\nMKV\n")
    with pytest.raises(InputFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_manifest(path)


def test_input_hash_follows_the_inputs(tmp_path):
    structure = write_structure(tmp_path / "s.pdb")
    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"id\tstructure\tchain\nx\t{structure.name}\tA\n")
    before = read_manifest(manifest).designs[0].input_hash
    assert read_manifest(manifest).designs[0].input_hash == before
    structure.write_text(structure.read_text().replace("-0.50 0.00 -0.50", "-0.70 0.00 -0.70"))
    assert read_manifest(manifest).designs[0].input_hash != before


# ------------------------------------------------------------------ config


def test_config_reuses_explain_options_and_checks_keys(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(TINY_CONFIG)
    config = load_config(cfg)
    assert config.explain["steps"] == 3 and config.explain["eval_samples"] == 2
    assert config.explain["temperature"] == 0.5  # explain's default
    assert config.batch.bucket_size == 2 and config.compare.alanine_scan is False
    as_json = tmp_path / "c.json"
    as_json.write_text(json.dumps(config.as_dict()))
    assert load_config(as_json).settings_hash() == config.settings_hash()

    for text, message in [
        ("[explain]\nstepz = 3\n", "unknown key 'stepz' in \\[explain\\]; did you mean 'steps'"),
        ("[explain]\nsteps = 0\n", "steps: must be at least 1"),
        ("[explain]\nmode = 'both'\n", "mode must be one of"),
        ("[explain]\nno_msa_features = 1\n", "must be true or false"),
        ("[compare]\nbackend = 'magic'\n", "backend must be one of"),
        ("[batch]\nbucket_size = 'x'\n", "bucket_size must be of type int"),
        ("[explian]\n", "unknown key 'explian' in \\[top level\\]"),
    ]:
        cfg.write_text(text)
        with pytest.raises(InvalidParameterError, match=message):
            load_config(cfg)
    cfg.write_text("[explain\n")
    with pytest.raises(InputFileError, match="not valid TOML"):
        load_config(cfg)


def test_settings_hash_tracks_results_not_execution():
    base = build_config({})
    assert (
        build_config({"batch": {"cpu_threads": 4, "memory_gib": 2}}).settings_hash() == base.settings_hash()
    )
    assert build_config({"explain": {"steps": 4}}).settings_hash() != base.settings_hash()
    assert build_config({"explain": {"scramble_msa": True}}).settings_hash() != base.settings_hash()
    assert build_config({"explain": {"clip_value": 0.5}}).settings_hash() != base.settings_hash()
    assert build_config({"batch": {"bucket_size": 3}}).settings_hash() != base.settings_hash()


def test_buckets_do_not_depend_on_row_order_or_progress(tmp_path):
    manifest, _ = write_full_campaign(tmp_path)
    designs = read_manifest(manifest).designs
    kwargs = dict(bucket_size=2, seed=7, samples=1, memory_gib=8.0)
    buckets = make_buckets(designs, **kwargs)
    again = make_buckets(list(reversed(designs)), **kwargs)
    assert {(b.key, tuple(b.ids), b.seed, b.max_batch) for b in buckets} == {
        (b.key, tuple(b.ids), b.seed, b.max_batch) for b in again
    }
    members = sorted(i for b in buckets for i in b.ids)
    assert members == sorted(GOOD_IDS + ["bad_chain"])  # each design in exactly one bucket
    assert all(len(b.designs) <= 2 for b in buckets)
    assert [b.ids for b in buckets if b.key.startswith("msa")] == [["m1"]]
    assert {b.seed for b in buckets} == {7}  # the global seed: no dependence on bucket-mates' ids


# ------------------------------------------------------------------ status


def test_status_log_last_record_wins_and_survives_a_torn_line(tmp_path):
    log = StatusLog(tmp_path / "status.jsonl")
    log.append(StatusRecord("x", "failed", "boom", "explain", "t1"))
    log.append(StatusRecord("y", "done", time="t2", folder="designs/y"))
    log.append(StatusRecord("x", "done", time="t3", folder="designs/x"))
    with open(log.path, "a") as fh:
        fh.write('{"id": "z", "sta')  # a kill in the middle of a write
    latest = log.latest()
    assert set(latest) == {"x", "y"} and latest["x"].state == "done"
    log.compact(order=["y", "x"])
    assert [json.loads(line)["id"] for line in log.path.read_text().splitlines()] == ["y", "x"]


def test_summary_html_escapes_and_sorts():
    row = {
        "id": "<script>alert(1)</script>",
        "state": "failed",
        "error": 'bad "thing" & <more>',
        "folder": None,
        "energy_backend": None,
        "report": None,
    }
    from protscramble.batch.summary import COLUMNS

    page = to_html([{**dict.fromkeys(n for n, _ in COLUMNS), **row}])
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;thing&quot; &amp; &lt;more&gt;" in page
    assert 'data-type="num"' in page and "addEventListener" in page


# --------------------------------------------------------------- campaigns


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted in-process run of the full campaign."""
    folder = tmp_path_factory.mktemp("reference")
    manifest, config = write_full_campaign(folder)
    report = run_batch(manifest, folder / "out", config, devices="cpu", log=None)
    return manifest, config, folder / "out", report


def test_batch_completes_good_designs_and_reports_broken_ones(reference):
    _, _, out, report = reference
    states = final_states(out)
    assert {i for i, s in states.items() if s[0] == "done"} == set(GOOD_IDS)
    assert set(report.failed) == set(BROKEN_IDS) and set(report.done) == set(GOOD_IDS)
    assert states["bad_chain"][:2] == ("failed", "compare") and "chain" in states["bad_chain"][2]
    assert states["bad_letters"][:2] == ("failed", "manifest")
    assert not (out / "designs" / "bad_chain").exists()  # a failed design leaves no folder
    s1 = out / "designs" / "s1"
    assert {p.name for p in (s1 / "explain").iterdir()} >= {"importance.tsv", "pssm.tsv", "summary.json"}
    compare = json.loads((s1 / "compare" / "summary.json").read_text())
    assert compare["energy_backend"] == "table" and compare["importance"] == "explain/importance.tsv"
    assert not (out / "designs" / "a1" / "compare").exists()
    design = json.loads((s1 / "design.json").read_text())
    assert design["bucket"]["members"] == ["bad_chain", "s1"] and design["chain"] == "A"
    explain = json.loads((s1 / "explain" / "summary.json").read_text())
    assert explain["settings"]["seed"] == design["bucket"]["seed"] and explain["settings"]["batch_size"] == 2

    rows = [line.split("\t") for line in (out / "campaign.tsv").read_text().splitlines()]
    header, body = rows[0], {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert len(body) == len(GOOD_IDS) + len(BROKEN_IDS)
    assert body["s1"]["energy_backend"] == "table" and float(body["s1"]["rho_abs_energy"]) == pytest.approx(
        compare["statistics"]["spearman"]["abs_total"]["rho"], abs=1e-5
    )
    assert body["a1"]["top_residues"].count(",") == 4 and body["dup"]["state"] == "failed"
    # the evaluation KL's standard error travels from the design's summary into the campaign table
    assert float(body["s1"]["eval_kl_sem"]) == pytest.approx(explain["eval_kl_sem"], rel=1e-5)
    assert explain["eval_kl_sem"] > 0
    page = (out / "campaign.html").read_text()
    assert 'href="designs/s1/"' in page and "designs/s1/explain/importance.png" in page
    assert "odd &lt;id&gt; &amp; &quot;x&quot;" in page and "sequence" not in header
    assert leftovers(out) == []


def test_killed_run_resumes_to_the_same_outputs(reference, tmp_path):
    manifest, config, ref_out, _ = reference
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "protscramble.cli", "batch", "--manifest", manifest, "--out", out]
    cmd += ["--config", config, "--devices", "cpu"]
    with open(tmp_path / "log1", "w") as log:
        proc = subprocess.Popen([str(c) for c in cmd], stderr=log, stdout=log)
        deadline = time.monotonic() + 240
        status = out / "status.jsonl"
        while time.monotonic() < deadline and proc.poll() is None:
            if status.exists() and '"state": "done"' in status.read_text():
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the batch ended before it could be interrupted"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done_at_kill = {i for i, rec in StatusLog(status).latest().items() if rec.state == "done"}
    assert 1 <= len(done_at_kill) < len(GOOD_IDS)
    # A temporary folder as a kill in the middle of a write would leave it.
    (out / "designs" / ".a3.tmp-killed").mkdir(parents=True)

    rerun = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 1, rerun.stderr  # some designs are broken
    assert f"{len(done_at_kill)} already done" in rerun.stderr
    assert final_states(out) == final_states(ref_out)
    assert design_outputs(out) == design_outputs(ref_out)
    assert leftovers(out) == []

    again = run_batch(manifest, out, config, devices="cpu", log=None)  # nothing left to do
    assert again.done == [] and sorted(again.skipped) == sorted(GOOD_IDS)
    assert design_outputs(out) == design_outputs(ref_out)


def test_rerun_of_a_half_written_bucket_reproduces_the_missing_design(reference, tmp_path):
    import shutil

    manifest, config, ref_out, _ = reference
    out = tmp_path / "out"
    shutil.copytree(ref_out, out)
    # a2 finished, its bucket-mate a1 did not: a1 must come out as in the uninterrupted run.
    shutil.rmtree(out / "designs" / "a1")
    lines = (out / "status.jsonl").read_text().splitlines()
    (out / "status.jsonl").write_text("".join(f"{x}\n" for x in lines if json.loads(x)["id"] != "a1"))
    report = run_batch(manifest, out, config, devices="cpu", log=None)
    assert report.done == ["a1"]
    assert design_outputs(out) == design_outputs(ref_out)


def test_a_design_barely_depends_on_its_bucket_mates(reference, tmp_path):
    """a1 alone equals a1 optimised with a2 up to float rounding (per-example random streams)."""
    import numpy as np

    _, _, ref_out, _ = reference
    manifest = tmp_path / "m.tsv"
    manifest.write_text("id\tsequence\na1\tMKVLAAGIEELL\n")
    config = tmp_path / "c.toml"
    config.write_text(TINY_CONFIG.replace("bucket_size = 2", "bucket_size = 1"))
    run_batch(manifest, tmp_path / "out", config, devices="cpu", log=None)

    def table(out, name):
        rows = (out / "designs" / "a1" / "explain" / name).read_text().splitlines()[1:]
        return np.array([[float(v) for v in row.split("\t")[2:]] for row in rows])

    for name in ("importance.tsv", "pssm.tsv"):
        np.testing.assert_allclose(table(tmp_path / "out", name), table(ref_out, name), rtol=1e-4, atol=1e-6)


def test_changed_settings_redo_finished_designs(reference, tmp_path):
    manifest, _, _, _ = reference
    small = tmp_path / "m.tsv"
    small.write_text("id\tsequence\nq1\tMKVLAAGIEELL\n")
    cfg = build_config(
        {"explain": {"steps": 2, "samples": 1, "eval_samples": 1, "precision": "fp32", "compile": "off"}}
    )
    assert run_batch(small, tmp_path / "out", cfg, devices="cpu", log=None).done == ["q1"]
    assert run_batch(small, tmp_path / "out", cfg, devices="cpu", log=None).done == []
    cfg3 = build_config(
        {"explain": {"steps": 3, "samples": 1, "eval_samples": 1, "precision": "fp32", "compile": "off"}}
    )
    assert run_batch(small, tmp_path / "out", cfg3, devices="cpu", log=None).done == ["q1"]
    trace = (tmp_path / "out" / "designs" / "q1" / "explain" / "trace.tsv").read_text()
    assert len(trace.splitlines()) == 4  # header + 3 steps


def test_two_local_workers_give_the_same_results(reference, tmp_path):
    manifest, config, ref_out, _ = reference
    out = tmp_path / "out"
    report = run_batch(manifest, out, config, devices="cpu,cpu", log=None)
    assert sorted(report.done) == sorted(GOOD_IDS)
    assert design_outputs(out) == design_outputs(ref_out)


# --------------------------------------------------------------------- CLI


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    manifest = tmp_path / "m.tsv"
    manifest.write_text("id\tsequence\nq\tMKV\n")
    bad = tmp_path / "c.toml"
    bad.write_text("[explain]\ntarget_bitz = 2\n")
    for argv in [
        ["--manifest", manifest, "--config", bad],
        ["--manifest", tmp_path / "absent.tsv"],
        ["--manifest", manifest, "--devices", "tpu"],
        ["--manifest", manifest, "--devices", "cpu", "--ray-address", "auto"],
    ]:
        code = main(["batch", "--out", str(tmp_path / "out"), *map(str, argv)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith("protscramble: error: "), err
    assert not (tmp_path / "out").exists()


def test_defaults_without_a_config_file():
    config = BatchConfig()
    assert config.explain["steps"] == 500 and config.compare.enabled and not config.compare.alanine_scan
    assert config.settings_hash() == build_config({}).settings_hash()


# -------------------------------------------------------- reference designs


def test_design_model_with_rosetta_table(tmp_path):
    pdb = shared_file("structures", "designed", "sh3_binders", "sh3_r1_146_r2_11.pdb")
    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"id\tstructure\tchain\tinterface\nsh3\t{pdb}\tA\tA_B\n")
    cfg = build_config(
        {
            "explain": {"steps": 1, "samples": 1, "eval_samples": 1, "precision": "fp32", "compile": "off"},
            "compare": {"permutations": 100},
        }
    )
    report = run_batch(manifest, tmp_path / "out", cfg, devices="cpu", log=None)
    assert report.done == ["sh3"], report.failed
    compare = json.loads((tmp_path / "out" / "designs" / "sh3" / "compare" / "summary.json").read_text())
    assert compare["energy_backend"] == "table" and compare["mapping"]["identity"] == 1.0
    assert compare["statistics"]["spearman"]["abs_total"]["n"] == 64
    assert compare["settings"]["interface"] == "A_B"


def test_local_engine_devices(monkeypatch):
    import torch

    from protscramble.batch import resolve_devices

    assert resolve_devices("cpu,cpu") == ["cpu", "cpu"]
    assert len(resolve_devices("auto")) >= 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert resolve_devices("auto") == ["cuda:0", "cuda:1", "cuda:2"]  # one worker per GPU
    with pytest.raises(InvalidParameterError, match="only 3 GPU"):
        resolve_devices("cuda:5")
