"""Reading the protein given on the command line (--sequence | --fasta | --a3m)."""

from __future__ import annotations

import argparse

from ..alphabet import validate_sequence
from ..explain import Protein
from ..io import read_a3m, read_fasta


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--sequence", help="protein sequence in one-letter code")
    src.add_argument("--fasta", help="FASTA file (every record is used)")
    src.add_argument("--a3m", help="A3M alignment; the first record is the query")


def read_proteins(args: argparse.Namespace) -> list[Protein]:
    """Proteins named by the input arguments, validated."""
    if args.sequence is not None:
        return [Protein("query", validate_sequence(args.sequence))]
    if args.fasta is not None:
        return [Protein(r.name, r.sequence) for r in read_fasta(args.fasta)]
    msa = read_a3m(args.a3m)
    return [Protein(msa.name.split()[0] if msa.name else "query", msa.query, msa)]
