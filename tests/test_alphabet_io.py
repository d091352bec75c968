from __future__ import annotations

import numpy as np
import pytest

from protscramble.alphabet import AMINO_ACIDS, decode, one_hot, validate_sequence
from protscramble.errors import InputFileError, InvalidSequenceError
from protscramble.io import atomic_output_dir, parse_a3m_text, read_a3m, read_fasta


@pytest.mark.parametrize("bad", ["MKV1", "MKB", "MJK", "OMK", "MUK", "MKX", "ZMK", "MK-V", "MK*"])
def test_invalid_letters_are_rejected_with_position(bad):
    with pytest.raises(InvalidSequenceError, match="outside the alphabet"):
        validate_sequence(bad)


def test_empty_sequence_rejected():
    with pytest.raises(InvalidSequenceError, match="empty"):
        validate_sequence("  \n")


def test_one_hot_roundtrip():
    seq = "ARNDCQEGHILKMFPSTWYV"
    x = one_hot(seq.lower())
    assert x.shape == (20, 20)
    assert float(x.sum()) == 20
    assert decode(x) == seq == AMINO_ACIDS


def test_read_fasta_multiple_records(tmp_path):
    f = tmp_path / "a.fasta"
    f.write_text(">one first\nMKV\nLL\n>two\nGGS\n")
    recs = read_fasta(f)
    assert [(r.name, r.sequence) for r in recs] == [("one first", "MKVLL"), ("two", "GGS")]


def test_fasta_errors(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        read_fasta(tmp_path / "missing.fasta")
    (tmp_path / "empty.fasta").write_text("")
    with pytest.raises(InputFileError, match="empty"):
        read_fasta(tmp_path / "empty.fasta")
    (tmp_path / "bin.fasta").write_bytes(b"\x89PNG\x00\x01\x02")
    with pytest.raises(InputFileError, match="binary"):
        read_fasta(tmp_path / "bin.fasta")
    (tmp_path / "plain.txt").write_text("MKV\n")
    with pytest.raises(InputFileError, match="FASTA"):
        read_fasta(tmp_path / "plain.txt")
    (tmp_path / "bad.fasta").write_text(">x\nMK1\n")
    with pytest.raises(InvalidSequenceError):
        read_fasta(tmp_path / "bad.fasta")


def test_a3m_insertions_removed_and_unknown_are_gaps():
    msa = parse_a3m_text(">q\nMKV\n>s1\nMaKV\n>s2\n-K.B\n")
    assert msa.query == "MKV"
    assert msa.codes.shape == (3, 3)
    # 'a' is an insertion (dropped), '.' too; 'B' is unknown -> gap (20)
    assert msa.codes[1].tolist() == [AMINO_ACIDS.index(c) for c in "MKV"]
    assert msa.codes[2].tolist() == [20, AMINO_ACIDS.index("K"), 20]


def test_a3m_unequal_rows_rejected(tmp_path):
    f = tmp_path / "x.a3m"
    f.write_text(">q\nMKV\n>s\nMK\n")
    with pytest.raises(InputFileError, match="row 2 has 2 columns"):
        read_a3m(f)


def test_atomic_output_dir_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_output_dir(target) as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_dir_replaces_existing(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_output_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_real_a3m(tmp_path):
    from conftest import shared_file

    msa = read_a3m(shared_file("trrosetta", "TR005257.a3m"))
    assert msa.depth == 124 and msa.length == 72
    assert np.all(msa.codes <= 20)
