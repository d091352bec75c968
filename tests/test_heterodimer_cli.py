"""``protscramble heterodimer ...``: outputs, bad inputs, and the benchmark harness on a few pairs.

Most tests use randomly initialised predictor weights saved as a .pt, so
they run without the reference data; the ones that need the published
weights skip with a reason when ``../shared/data`` is absent.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_file

from protscramble.cli import main
from protscramble.predictors.heterodimer import HeterodimerPredictor, HeterodimerRNN, save_state_dict

CHAINS = [
    ("SEKEEIDRAIKEIEELLKESEKITRDNEDSMKK", "SEREAVKRALDRLRELLDLSRKLLELSKELF"),
    ("TDKEVVRVLEENVKSLEKNARVLRENLKAIERV", "SEIEELEKSSRELKKSVKELEESTKEAEKV"),
    ("SVEEAVERALKEVRDVVDRSNKAVEESKRVLRL", "SAEKLVEELVRLNEESNRETQDLLRLVESLV"),
    ("DLEDLLRRLRRLVDEQRRLVEELERVSRRLEKA", "TAEELLEVHKKSDRVTKEHLRVSEEILKVVEV"),
]


def shared(name: str) -> Path:
    return shared_file("heterodimer", name)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "random.pt"
    save_state_dict(HeterodimerRNN(), path)
    return path


def write_tsv(
    path: Path,
    rows: list[list[str]],
    header: tuple[str, ...] = ("name", "amino_seq_1", "amino_seq_2", "interacts"),
) -> Path:
    path.write_text("\n".join("\t".join(r) for r in [list(header), *rows]) + "\n")
    return path


def pairs_file(tmp_path: Path, n: int = 4) -> Path:
    rows = [[f"p{i}", a, b, str((i + 1) % 2)] for i, (a, b) in enumerate((CHAINS * 8)[:n])]
    return write_tsv(tmp_path / "pairs.tsv", rows)


def read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def run_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("protscramble: error: ") and "\n" not in err and "Traceback" not in err
    return err


# ----------------------------------------------------------------------------- predict


def test_predict_keeps_columns_and_adds_probability(random_weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.tsv"
    assert (
        main(
            [
                "heterodimer",
                "predict",
                "--weights",
                str(random_weights),
                "--pairs",
                str(pairs_file(tmp_path)),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = read_tsv(out)
    assert list(rows[0]) == ["name", "amino_seq_1", "amino_seq_2", "interacts", "probability"]
    assert [r["name"] for r in rows] == ["p0", "p1", "p2", "p3"]
    expected = HeterodimerPredictor.from_file(random_weights).predict_pairs(
        [c[0] for c in CHAINS], [c[1] for c in CHAINS]
    )
    np.testing.assert_allclose([float(r["probability"]) for r in rows], expected, rtol=1e-5)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [["a", "DEVK", "LLKE", "1"], ["b", "DECK", "LLKE", "0"]],
            r"row 2 \(line 3\) amino_seq_1 has letters outside",
        ),
        (
            [["a", "DEVK", "L" * 82, "1"]],
            r"row 1 \(line 2\) amino_seq_2 has 82 residues; the predictor accepts at most 81",
        ),
        ([["a", "DEVK", "LLKE"]], "row 1 (line 2) has 3 fields, the header has 4"),
        ([["a", "DEVK", "LLKE", "yes"]], "interacts must be 0 or 1"),
        ([], "has a header but no pairs"),
    ],
    ids=["letter", "too-long", "ragged", "label", "empty"],
)
def test_predict_bad_pairs_name_the_row(rows, message, random_weights, tmp_path, capsys) -> None:  # noqa: ANN001
    import re

    bad = write_tsv(tmp_path / "bad.tsv", rows)
    out = tmp_path / "pred.tsv"
    err = run_error(
        capsys,
        ["heterodimer", "predict", "--weights", str(random_weights), "--pairs", str(bad), "--out", str(out)],
    )
    assert re.search(message, err) or message in err, err
    assert not out.exists()


def test_predict_missing_inputs(
    random_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = pairs_file(tmp_path)
    out = str(tmp_path / "o.tsv")
    err = run_error(
        capsys,
        [
            "heterodimer",
            "predict",
            "--weights",
            str(tmp_path / "nope.h5"),
            "--pairs",
            str(pairs),
            "--out",
            out,
        ],
    )
    assert "weights file not found" in err
    nocols = write_tsv(tmp_path / "nocols.tsv", [["DEVK", "LLKE"]], header=("seq1", "seq2"))
    err = run_error(
        capsys,
        ["heterodimer", "predict", "--weights", str(random_weights), "--pairs", str(nocols), "--out", out],
    )
    assert "lacks the column(s) amino_seq_1, amino_seq_2" in err
    err = run_error(
        capsys,
        [
            "heterodimer",
            "predict",
            "--weights",
            str(random_weights),
            "--pairs",
            str(tmp_path / "x.tsv"),
            "--out",
            out,
        ],
    )
    assert "pairs file not found" in err


# ----------------------------------------------------------------------------- train, explain


@pytest.fixture(scope="module")
def tiny_scrambler(random_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scrambler")
    out = folder / "scrambler.pt"
    argv = [
        "heterodimer", "train-scrambler", "--weights", str(random_weights), "--pairs", str(pairs_file(folder, 16)),
        "--epochs", "1", "--channels", "4", "--samples", "2", "--batch-size", "8", "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    assert out.exists() and not (folder / "scrambler.pt.ckpt").exists()
    return out


def test_explain_with_a_scrambler_on_one_pair(random_weights, tiny_scrambler, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "exp"
    a, b = CHAINS[0]
    argv = [
        "heterodimer",
        "explain",
        "--weights",
        str(random_weights),
        "--scrambler",
        str(tiny_scrambler),
        "--chain1",
        a,
        "--chain2",
        b,
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0
    rows = read_tsv(out / "importance.tsv")
    assert len(rows) == len(a) + len(b)
    assert {r["chain"] for r in rows} == {"1", "2"} and rows[0]["residue"] == a[0]
    assert (out / "figures" / "pair_0001.png").stat().st_size > 1000
    assert json.loads((out / "settings.json").read_text())["method"] == "scrambler_network_inclusion"
    pairs = read_tsv(out / "pairs.tsv")
    assert 0 <= float(pairs[0]["probability"]) <= 1 and float(pairs[0]["bits"]) >= 0


def test_explain_alternative_features_and_fine_tuning(random_weights, tiny_scrambler, tmp_path) -> None:  # noqa: ANN001
    pairs = pairs_file(tmp_path, 2)
    base = [
        "heterodimer",
        "explain",
        "--weights",
        str(random_weights),
        "--scrambler",
        str(tiny_scrambler),
        "--pairs",
        str(pairs),
        "--quiet",
    ]
    assert main([*base, "--exclude", "1:1-5,2:3", "--out", str(tmp_path / "ex")]) == 0
    rows = read_tsv(tmp_path / "ex" / "importance.tsv")
    hidden = [
        r
        for r in rows
        if (r["chain"] == "1" and int(r["position"]) <= 5) or (r["chain"] == "2" and r["position"] == "3")
    ]
    assert len(hidden) == 12 and all(float(r["importance"]) == 0 for r in hidden)
    assert main([*base, "--fine-tune-steps", "2", "--max-figures", "0", "--out", str(tmp_path / "ft")]) == 0
    assert (
        json.loads((tmp_path / "ft" / "settings.json").read_text())["method"]
        == "scrambler_fine_tuned_inclusion"
    )
    assert not (tmp_path / "ft" / "figures").exists()


def test_explain_per_example(random_weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "pe"
    argv = [
        "heterodimer", "explain", "--weights", str(random_weights), "--per-example", "--pairs", str(pairs_file(tmp_path, 2)),
        "--mode", "occlusion", "--steps", "2", "--samples", "2", "--background", "position", "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    assert len(read_tsv(out / "pairs.tsv")) == 2
    assert json.loads((out / "settings.json").read_text())["method"] == "scrambler_per_example_occlusion"


def test_explain_bad_arguments(random_weights, tiny_scrambler, tmp_path, capsys) -> None:  # noqa: ANN001
    pairs = str(pairs_file(tmp_path))
    out = tmp_path / "never"
    w = ["heterodimer", "explain", "--weights", str(random_weights), "--out", str(out)]
    assert "not both" in run_error(capsys, [*w, "--per-example", "--pairs", pairs, "--chain1", "DEVK"])
    assert "both --chain1 and --chain2" in run_error(capsys, [*w, "--per-example", "--chain1", "DEVK"])
    assert "--exclude needs --scrambler" in run_error(
        capsys, [*w, "--per-example", "--pairs", pairs, "--exclude", "1:2"]
    )
    err = run_error(capsys, [*w, "--scrambler", str(tiny_scrambler), "--pairs", pairs, "--exclude", "1:500"])
    assert "past the end of chain 1" in err
    assert "outside the predictor's 19-letter alphabet" in run_error(
        capsys, [*w, "--per-example", "--chain1", "DEXK", "--chain2", "LL"]
    )
    assert "not a trained pair scrambler" in run_error(
        capsys, [*w, "--scrambler", str(random_weights), "--pairs", pairs]
    )
    assert main([*w, "--pairs", pairs]) == 2  # neither --scrambler nor --per-example: argparse error
    assert not out.exists()


# ----------------------------------------------------------------------------- benchmark


def test_benchmark_harness_on_a_few_pairs(random_weights, tiny_scrambler, tmp_path) -> None:  # noqa: ANN001
    a, b = CHAINS[3]
    hb = tmp_path / "hb.json"
    hb.write_text(
        json.dumps(
            {
                "name": "toy",
                "chain_1": a,
                "chain_2": b,
                "hbnet_positions_0based": {"chain_1": [1, 4], "chain_2": [2]},
            }
        )
    )
    out = tmp_path / "bench"
    argv = [
        "heterodimer", "benchmark", "--weights", str(random_weights), "--pairs", str(pairs_file(tmp_path, 12)),
        "--scrambler", str(tiny_scrambler), "--methods", "random,gradient_x_input", "--subset", "all",
        "--include-training-pairs", "--max-pairs", "3", "--samples", "4", "--hbnet", str(hb), "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    rows = read_tsv(out / "benchmark.tsv")
    assert list(rows[0]) == ["method", "metric", "top_fraction", "value"]
    methods = {r["method"] for r in rows}
    assert methods == {"random", "gradient_x_input", "scrambler_network_inclusion"}
    metrics = {(r["metric"], r["top_fraction"]) for r in rows if r["method"] == "random"}
    for mode in ("inclusion", "occlusion"):
        assert {(f"{mode}_kl_median", "0.1"), (f"{mode}_kl_median", "0.2")} <= metrics
    assert ("toy_hbnet_average_precision", "") in metrics
    assert all(np.isfinite(float(r["value"])) for r in rows)
    table = (out / "benchmark.md").read_text()
    assert "| scrambler_network_inclusion |" in table and "3 pairs" in table
    assert len(json.loads((out / "settings.json").read_text())["pair_rows"]) == 3


def test_benchmark_bad_arguments(random_weights, tmp_path, capsys) -> None:  # noqa: ANN001
    w = [
        "heterodimer",
        "benchmark",
        "--weights",
        str(random_weights),
        "--pairs",
        str(pairs_file(tmp_path)),
        "--out",
        str(tmp_path / "b"),
    ]
    assert "unknown method(s) shap" in run_error(capsys, [*w, "--methods", "random,shap"])
    assert "--fractions must be in (0, 1]" in run_error(capsys, [*w, "--fractions", "0.1,1.5"])
    assert "nothing to benchmark" in run_error(capsys, [*w, "--methods", "none"])
    assert not (tmp_path / "b").exists()


# ----------------------------------------------------------------------------- with the published weights


def test_convert_weights_then_predict_gives_identical_files(tmp_path: Path) -> None:
    h5 = shared("ppi_rnn_keras.h5")
    example = json.loads(shared("DHD_154.json").read_text())
    pairs = write_tsv(tmp_path / "dhd.tsv", [["DHD_154", example["chain_1"], example["chain_2"], "1"]])
    pt = tmp_path / "ppi_rnn.pt"
    assert main(["heterodimer", "convert-weights", "--weights", str(h5), "--out", str(pt)]) == 0
    for w, name in ((h5, "h5.tsv"), (pt, "pt.tsv")):
        assert (
            main(
                [
                    "heterodimer",
                    "predict",
                    "--weights",
                    str(w),
                    "--pairs",
                    str(pairs),
                    "--out",
                    str(tmp_path / name),
                ]
            )
            == 0
        )
    assert (tmp_path / "h5.tsv").read_text() == (tmp_path / "pt.tsv").read_text()
    p = float(read_tsv(tmp_path / "h5.tsv")[0]["probability"])
    assert abs(p - example["reference_binding_probability"]) < 1e-4


def test_benchmark_with_the_published_predictor_and_dhd154(tmp_path: Path) -> None:
    h5, dev, dhd = shared("ppi_rnn_keras.h5"), shared("coiled_coil_pairs_dev.tsv"), shared("DHD_154.json")
    out = tmp_path / "bench"
    argv = [
        "heterodimer", "benchmark", "--weights", str(h5), "--pairs", str(dev), "--methods", "random,integrated_gradients",
        "--max-pairs", "3", "--samples", "16", "--hbnet", str(dhd), "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    rows = read_tsv(out / "benchmark.tsv")
    ap = {r["method"]: float(r["value"]) for r in rows if r["metric"] == "DHD_154_hbnet_average_precision"}
    assert set(ap) == {"random", "integrated_gradients"}
    assert ap["integrated_gradients"] > ap["random"]  # IG finds HBNet residues better than chance
