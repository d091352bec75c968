"""3D view and structure export: colours, B-factors, PyMOL script, HTML safety, CLI errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from _structures_helpers import assert_one_line_error, run_cli, write_importance
from conftest import shared_file

from protscramble.errors import InputFileError, StructureError
from protscramble.predicted_fold import distogram_from_distances, embed_distogram
from protscramble.structure_export import (
    NETWORK_COLOUR,
    OTHER_COLOUR,
    ColourScale,
    export_importance_structure,
    lay_importance,
)
from protscramble.structures import find_hbond_networks, load_structure
from protscramble.structures.compare import Importance
from protscramble.viewer import (
    CDN_URL,
    importance_view,
    inline_script,
    predicted_fold_view,
    script_json,
    structure_view,
)

MALICIOUS = "<script>alert(1)</script>"
#: Enough of a "3Dmol.js" for the writer (the real one is only needed by the browser test).
STUB_JS = "var $3Dmol = {createViewer: function () { return null; }}; var s = '</script><!--';\n"


def binder_file():
    # a PD-L1 binder (chain A) with a PD-L1 chain B and one interface H-bond network
    return shared_file("structures", "designed", "pdl1_binders", "pd1_r1_10_r2_1.pdb")


@pytest.fixture
def stub_js(tmp_path):
    path = tmp_path / "3Dmol-min.js"
    path.write_text(STUB_JS)
    return path


def helix_fold(n: int = 12):
    t = np.radians(100.0) * np.arange(n)
    coords = np.stack([2.3 * np.cos(t), 2.3 * np.sin(t), 1.5 * np.arange(n)], axis=1)
    d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    return distogram_from_distances(d)


# ---------------------------------------------------------------- colour scale


def test_colour_scale_ends_and_clipping():
    scale = ColourScale.from_values([0.0, 0.5, 2.0])
    assert (scale.vmin, scale.vmax) == (0.0, 2.0)
    assert scale.hex(0.0) == "#440154" and scale.hex(2.0) == "#fde725"  # viridis ends
    assert scale.hex(-5) == scale.hex(0.0) and scale.hex(9) == scale.hex(2.0)
    assert ColourScale.from_values([0.0, 0.0]).vmax == 1.0  # all-zero importance still has a range
    with pytest.raises(Exception, match="colour map"):
        ColourScale.from_values([1.0], cmap="no-such-map")
    with pytest.raises(Exception, match="empty"):
        ColourScale.from_values([1.0], vmin=2.0, vmax=1.0)


# ------------------------------------------------------------------ B-factors


def test_written_bfactors_equal_importance(tmp_path):
    structure = load_structure(binder_file())
    seq = structure.sequence("A")
    values = np.random.default_rng(0).uniform(0, 3, len(seq))
    laid = lay_importance(Importance(seq, values), structure, "A")
    paths = export_importance_structure(laid, tmp_path / "design")
    assert sorted(p.name for p in paths) == ["design.cif", "design.pdb", "design.pml"]
    # read the PDB with plain string slicing: B-factor column 61-66 of every ATOM record
    per_residue: dict[tuple[str, int], set[float]] = {}
    for line in (tmp_path / "design.pdb").read_text().splitlines():
        if line.startswith("ATOM"):
            per_residue.setdefault((line[21], int(line[22:26])), set()).add(float(line[60:66]))
    chain_a = [k for k in per_residue if k[0] == "A"]
    assert len(chain_a) == len(seq)
    for i, key in enumerate(chain_a):
        assert per_residue[key] == {round(float(values[i]), 2)}
    assert all(per_residue[k] == {0.0} for k in per_residue if k[0] == "B")
    # mmCIF keeps full precision
    cif = load_structure(tmp_path / "design.cif")
    ca = cif.atoms[(cif.atoms.atom_name == "CA") & (cif.atoms.chain_id == "A")]
    assert np.allclose(ca.b_factor, values, atol=1e-6)


def test_pymol_script_colours_like_the_view(tmp_path):
    structure = load_structure(binder_file())
    seq = structure.sequence("A")
    values = np.linspace(0, 1, len(seq))
    laid = lay_importance(Importance(seq, values), structure, "A")
    hbnets = find_hbond_networks(structure, interface=("A", "B"))
    scale = ColourScale.from_values(values)
    export_importance_structure(laid, tmp_path / "d", scale=scale, top_k=5, hbnets=hbnets)
    pml = (tmp_path / "d.pml").read_text()
    assert pml.splitlines()[4] == "load d.pdb, d"
    colours = dict(re.findall(r"set_color (ps_imp_\d+), \[([^\]]+)\]", pml))
    coloured = {}
    for name, resi in re.findall(r"color (ps_imp_\d+), d and chain A and resi (\S+)", pml):
        rgb = tuple(round(float(c) * 255) for c in colours[name].split(","))
        for number in resi.split("+"):
            coloured[int(number)] = "#{:02x}{:02x}{:02x}".format(*rgb)
    residues = laid.residues()
    assert len(coloured) == len(seq)
    for i, r in enumerate(residues):
        assert coloured[r.number] == scale.hex(values[i])
    top = re.findall(r"show sticks, \(d and chain A and resi (\S+)\) and not name N\+C\+O", pml)[0]
    assert [int(x) for x in top.split("+")] == [r.number for r in residues[::-1][:5]]
    assert len(hbnets.networks) >= 1
    n_bonds = sum(len(net.hbonds) for net in hbnets.networks)
    assert pml.count("distance ps_hbonds,") == n_bonds > 0


# ----------------------------------------------------------------- the view


def test_structure_view_colours_sticks_and_networks():
    structure = load_structure(binder_file())
    seq = structure.sequence("A")
    values = np.linspace(0, 2, len(seq))
    laid = lay_importance(Importance(seq, values), structure)  # chain found from the sequence
    assert laid.chain == "A"
    hbnets = find_hbond_networks(structure, interface=("A", "B"))
    view = structure_view(laid, hbnets=hbnets, top_k=4)
    assert view.calls[0] == ("setStyle", [{}, {"cartoon": {"color": OTHER_COLOUR}}])
    cartoon = {}
    for method, args in view.calls:
        if method == "setStyle" and args[0]:
            for number in args[0]["resi"]:
                cartoon[(args[0]["chain"], number)] = args[1]["cartoon"]["color"]
    scale = ColourScale.from_values(values)
    for i, r in enumerate(laid.residues()):
        assert cartoon[("A", r.number)] == scale.hex(values[i])
    assert not any(key[0] == "B" for key in cartoon)  # the target stays grey
    sticks = [a for m, a in view.calls if m == "addStyle" and "color" in a[1]["stick"]]
    top_colours = {a[1]["stick"]["color"] for a in sticks} - {NETWORK_COLOUR}
    assert top_colours == {scale.hex(v) for v in values[-4:]}
    members = {r.key for net in hbnets.networks for r in net.residues}
    network_sticks = {
        (a[0]["chain"], a[0]["resi"][0]) for a in sticks if a[1]["stick"]["color"] == NETWORK_COLOUR
    }
    assert network_sticks == {(k[0], k[1]) for k in members}
    assert sum(m == "addCylinder" for m, _ in view.calls) == sum(len(n.hbonds) for n in hbnets.networks)
    hover = [a for m, a in view.calls if m == "setHoverable"]
    assert len(hover) == 1 and hover[0][2].startswith("function(atom, viewer)")
    assert sum(info.top for info in view.residues) == 4


def test_hover_labels_run_in_javascript(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot run the hover callback")
    structure = load_structure(binder_file())
    seq = structure.sequence("A")
    view = importance_view(
        Importance(seq, np.linspace(0, 1, len(seq))), structure, "A", energy_backend="table"
    )
    hover = next(a for m, a in view.calls if m == "setHoverable")
    script = tmp_path / "hover.js"
    first = view.residues[0].residue
    assert first.chain == "A"
    script.write_text(
        f"const over = eval('(' + {json.dumps(hover[2])} + ')');\n"
        f"const out = eval('(' + {json.dumps(hover[3])} + ')');\n"
        "const labels = [];\n"
        "const viewer = {addLabel: (t) => { labels.push(t); return labels.length; }, removeLabel: () => labels.push('removed')};\n"
        f"const atom = {{chain: 'A', resi: {first.number}, icode: ' ', x: 0, y: 0, z: 0}};\n"
        "over(atom, viewer); over(atom, viewer); out(atom, viewer);\n"
        "over({chain: 'Q', resi: 1, icode: ' ', x: 0, y: 0, z: 0}, viewer);\n"
        "console.log(JSON.stringify(labels));\n"
    )
    labels = json.loads(
        subprocess.run([node, str(script)], capture_output=True, text=True, check=True).stdout
    )
    assert len(labels) == 2 and labels[1] == "removed"  # one label per hover, removed on leaving
    assert labels[0].startswith(f"A{first.number} {first.name} | position 1 | importance 0")
    assert "energy" in labels[0] and "REU (ref2015)" in labels[0]


def test_predicted_fold_view_is_labelled_rough():
    imp = Importance("ACDEFGHIKLMN", np.linspace(0, 1, 12))
    view = predicted_fold_view(imp, embed_distogram(helix_fold(12)), top_k=3)
    assert view.rough_model and "ROUGH MODEL" in view.model
    assert "Rough model" in view.to_html()
    assert sum(m == "addCylinder" for m, _ in view.calls) == 2 * 11  # two halves per Cα-Cα bond
    with pytest.raises(InputFileError, match="12 residues, the importance for 5"):
        predicted_fold_view(Importance("ACDEF", np.ones(5)), embed_distogram(helix_fold(12)))


# ------------------------------------------------------------------- HTML


def test_script_json_cannot_close_a_script():
    text = script_json({"name": MALICIOUS, "x": "a & b"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"name": MALICIOUS, "x": "a & b"}
    assert "</script" not in inline_script("var a = '</SCRIPT>'; var b = '<!--';").lower()


def test_html_escapes_a_malicious_title(stub_js):
    imp = Importance("ACDEFGHIKLMN", np.linspace(0, 1, 12))
    view = predicted_fold_view(imp, embed_distogram(helix_fold(12)), title=MALICIOUS)
    view.notes.append(MALICIOUS)
    for page in (view.to_html(), view.to_html(stub_js)):
        assert MALICIOUS not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert page.count("</script>") == page.count("<script")  # every script closed by its own tag


def test_malicious_chain_name_stays_inert(tmp_path, stub_js):
    import biotite.structure.io.pdbx as pdbx

    structure = load_structure(shared_file("structures", "designed", "top7", "1QYS.pdb"))
    atoms = structure.atoms.copy()
    bad = "X</script><script>alert(1)//"
    atoms.chain_id = np.full(atoms.array_length(), bad, dtype="U40")
    cif = pdbx.CIFFile()
    pdbx.set_structure(cif, atoms)
    cif.write(str(tmp_path / "bad.cif"))
    struct = load_structure(tmp_path / "bad.cif")
    seq = struct.sequence(bad)
    view = importance_view(Importance(seq, np.linspace(0, 1, len(seq))), struct, energy_backend=None)
    assert view.model_format == "cif"  # PDB cannot hold the chain name
    page = view.to_html(stub_js)
    assert "<script>alert(1)" not in page
    assert page.count("</script>") == page.count("<script") == 2
    notebook = view.to_py3dmol()._make_html()
    assert "<script>alert(1)" not in notebook and notebook.count("</script>") == 1


def test_offline_page_inlines_the_js_and_names_no_cdn(tmp_path, stub_js):
    imp = Importance("ACDEFGHIKLMN", np.linspace(0, 1, 12))
    view = predicted_fold_view(imp, embed_distogram(helix_fold(12)))
    offline = view.write_html(tmp_path / "v.html", js=stub_js).read_text()
    assert "cdn.jsdelivr" not in offline and not re.search(r"<script[^>]+src=", offline)
    assert not re.search(r"https?://", offline)
    assert "var $3Dmol = {createViewer" in offline
    assert "<\\/script><!--" not in offline and "<\\/script><\\!--" in offline  # stub's literal stays inert
    online = view.to_html()
    assert f'<script src="{CDN_URL}"></script>' in online
    (tmp_path / "other.js").write_text("console.log('not the library');\n")
    with pytest.raises(InputFileError, match="does not look like a 3Dmol.js build"):
        view.to_html(tmp_path / "other.js")


def test_py3dmol_object_replays_the_same_calls():
    py3dmol = pytest.importorskip("py3Dmol")
    imp = Importance("ACDEFGHIKLMN", np.linspace(0, 1, 12))
    view = predicted_fold_view(imp, embed_distogram(helix_fold(12)))
    nb = view.to_py3dmol(width=400, height=300)
    assert isinstance(nb, py3dmol.view)
    js = nb._make_html()
    calls = re.findall(r"viewer_\w+\.(\w+)\(", js)
    assert calls.count("addCylinder") == 22 and calls.count("setHoverable") == 1
    assert calls.count("addLabel") == 8  # colour bar: title, 6 values, "rough model"


# -------------------------------------------------------------------- CLI


def test_cli_view_writes_page_and_exports(tmp_path, capsys, stub_js):
    structure = load_structure(binder_file())
    seq = structure.sequence("A")
    imp = write_importance(tmp_path / "importance.tsv", seq, np.linspace(0, 1, len(seq)))
    out = tmp_path / "out" / "view.html"
    code, _, err = run_cli(
        capsys, "view", "--importance", imp, "--structure", binder_file(), "--chain", "A",
        "--interface", "A_B", "--js", stub_js, "--out", out,
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.parent.iterdir()) == ["view.cif", "view.html", "view.pdb", "view.pml"]
    assert "energies: table (ref2015)" in err


@pytest.mark.parametrize(
    "case",
    ["other_sequence", "unknown_chain", "bad_js", "out_is_folder", "predictions_other_length"],
)
def test_cli_view_errors_leave_nothing(tmp_path, capsys, stub_js, case):
    structure = load_structure(binder_file())
    seq = structure.sequence("A")
    good = write_importance(tmp_path / "good.tsv", seq, np.linspace(0, 1, len(seq)))
    out = tmp_path / "out" / "view.html"
    args = ["view", "--importance", good, "--structure", binder_file(), "--chain", "A", "--out", out]
    expect = ""
    if case == "other_sequence":
        other = write_importance(tmp_path / "other.tsv", "MKVLAAGIEELLKKLGEEARRL" * 3, np.ones(66))
        args[2], expect = other, "does not match chain A"
    elif case == "unknown_chain":
        args[6], expect = "Z", "chain Z not found"
    elif case == "bad_js":
        args += ["--js", tmp_path / "missing.js"]
        expect = "3Dmol.js file not found"
    elif case == "out_is_folder":
        out.mkdir(parents=True)
        args[-1], expect = out, "is a folder"
    else:
        np.savez(tmp_path / "p.npz", dist=helix_fold(12))
        args = ["view", "--importance", good, "--predicted", tmp_path / "p.npz", "--out", out]
        expect = f"12 residues, the importance for {len(seq)}"
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err)
    assert expect in err
    leftovers = list(out.parent.iterdir()) if out.parent.exists() else []
    assert leftovers == ([] if case != "out_is_folder" else [out])


def test_cli_view_predicted_writes_rough_model(tmp_path, capsys, stub_js):
    seq = "ACDEFGHIKLMN"
    imp = write_importance(tmp_path / "importance.tsv", seq, np.linspace(0, 1, 12))
    np.savez(tmp_path / "predictions.npz", dist=helix_fold(12))
    out = tmp_path / "v.html"
    code, _, err = run_cli(
        capsys,
        "view",
        "--importance",
        imp,
        "--predicted",
        tmp_path / "predictions.npz",
        "--js",
        stub_js,
        "--out",
        out,
    )
    assert code == 0, err
    assert "ROUGH MODEL" in (tmp_path / "v_rough_model.pdb").read_text()
    assert "Rough model" in out.read_text()


def test_unknown_chain_in_the_api():
    structure = load_structure(binder_file())
    with pytest.raises(StructureError, match="chain Z not found"):
        lay_importance(Importance("ACD", np.ones(3)), structure, "Z")
    with pytest.raises(StructureError, match="matches no chain"):
        lay_importance(Importance("WWWWWWWWWWWW", np.ones(12)), structure)
