"""benchmarks/bench_inference_batch.py: split and unsplit forwards score the same curve point."""

from __future__ import annotations

from conftest import load_script


def test_the_bundled_example_gives_one_curve_point_at_every_batch_size(capsys):
    bench = load_script("bench_inference_batch.py")
    bench.main(
        ["--protein", "demo", "--samples", "5", "--batches", "0", "2", "--repeats", "1", "--threads", "1"]
    )
    lines = capsys.readouterr().out.splitlines()
    header = lines.index(
        "batch\ts_per_seq\tratio_to_first\tminflt_per_seq\tsys_fraction\tcurve_point\tmax_abs_diff"
    )
    rows = [line.split("\t") for line in lines[header + 1 : header + 3]]
    assert [r[0] for r in rows] == ["all", "2"]
    points = [float(r[5]) for r in rows]
    assert points[0] > 0 and abs(points[0] - points[1]) <= 1e-5 * points[0]
    assert float(rows[1][6]) <= 1e-5 * points[0]
    assert lines[-1].startswith("peak_rss_gib: ")
