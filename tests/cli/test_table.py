"""Tables of SPARQL results as the CLI prints them."""

from __future__ import annotations

from provml.cli.table import cell, render, shorten
from provml.core.ids import SHORT_FORMS, ref_iri
from provml.core.vocab import ID_BASE, PREFIXES, XSD_NS


def test_every_short_form_is_printed_and_read_back() -> None:
    assert set(SHORT_FORMS) == {"id", *PREFIXES}
    for prefix, base in SHORT_FORMS.items():
        short = shorten(base + "thing")
        assert short == f"{prefix}:thing"
        assert ref_iri(short) == base + "thing"
    assert shorten(ID_BASE + "data/sha256/ab") == "id:data/sha256/ab"
    assert shorten("http://example.org/x") == "http://example.org/x"


def test_cells() -> None:
    assert cell(None) == ""
    assert cell({"type": "bnode", "value": "b0"}) == "_:b0"
    when = {
        "type": "literal",
        "value": "2024-05-01T10:20:30.123456Z",
        "datatype": XSD_NS + "dateTime",
    }
    assert cell(when) == "2024-05-01 10:20:30.123"
    assert cell({"type": "literal", "value": "3"}) == "3"


def test_render() -> None:
    results = {
        "head": {"vars": ["model", "n", "hidden"]},
        "results": {
            "bindings": [
                {
                    "model": {"type": "uri", "value": ID_BASE + "m1"},
                    "n": {"type": "literal", "value": "10"},
                },
                {"model": {"type": "uri", "value": "x" * 100}},
            ]
        },
    }
    text = render(results, hide=frozenset({"hidden"}))
    lines = text.splitlines()
    assert lines[0].split() == ["model", "n"]
    assert lines[2].split() == ["id:m1", "10"]
    assert len(lines[3]) == 80 and "…" in lines[3]  # cut in the middle
    assert lines[-1] == "(2 rows)"
    assert render({"head": {}, "boolean": False}) == "no"
    assert render({"head": {"vars": ["a"]}, "results": {"bindings": []}}).endswith("(0 rows)")
