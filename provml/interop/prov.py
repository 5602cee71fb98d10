"""Reading PROV-JSON, PROV-XML and PROV-N: the ``prov`` package parses, provml makes the
quads.

``prov`` turns a document into PROV-O (an rdflib dataset); its terms become pyoxigraph
terms here, without a detour through RDF text, so that an error names a place in the
user's document, and so that what PROV-DM allows but RDF spells otherwise still lands:

* an identifier that is no IRI — a space (yProv4ML's ``Original requirements.txt``),
  characters a PROV-N local name may escape (``ex:c\\[1\\]``), a prefix bound to a word
  rather than an IRI (``"context": "context"``) — is minted under the document's base,
  percent-encoded, with the identifier as written kept as its ``rdfs:label``;
* a value written as a string with its type (``"1973^^xsd:double"``) becomes a typed
  literal;
* a relation given only its first argument (``wasAssociatedWith(ex:a)``, which ``prov``
  writes as nothing) becomes a qualified relation node of its class.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urljoin

from pyoxigraph import BlankNode, DefaultGraph, Literal, NamedNode, Quad

from provml.core.errors import ValidationError
from provml.core.vocab import PROV, RDF, RDFS, XSD

#: characters an IRI may not hold (RFC 3987), percent-encoded when minting one
_NOT_IN_IRI = re.compile(r'[\x00-\x20<>"{}|\\^`\[\]\x7f]')
_TYPED_STRING = re.compile(r"(.*)\^\^xsd:([A-Za-z]+)", re.DOTALL)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
#: relations PROV-N writes with two identifiers, neither of which may be ``-``
_BOTH_REQUIRED = {"Alternate": "alternateOf", "Specialization": "specializationOf",
                  "Mention": "mentionOf", "Membership": "hadMember"}  # fmt: skip
_XSD_STRING = str(XSD.string.value)


class _Dtd(Exception):
    pass


def _refuse_dtd(data: bytes, label: str) -> None:
    """Refuse an XML document with a DTD, found by expat itself (so no encoding — a
    declared UTF-7, UTF-16 — can hide a ``<!DOCTYPE``), before any other parser reads it.

    PROV-XML needs no DTD; one could declare entities that read local files or expand
    without bound. The refusal holds by itself, whatever the parser behind ``prov``
    would have done with the DTD. Expat reads UTF-8, UTF-16, ISO-8859-1 and US-ASCII: a
    document declaring any other encoding is refused too.
    """
    from xml.parsers import expat

    def dtd(*_: object) -> None:
        raise _Dtd

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = dtd
    parser.EntityDeclHandler = dtd
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(data, True)
    except _Dtd:
        raise ValidationError(
            f"{label} documents with a DTD (<!DOCTYPE …>) are refused: provml reads no "
            "entity declarations"
        ) from None
    except ValueError as exc:  # Python's expat takes no multi-byte encoding but UTF-8/16
        raise ValidationError(
            f"{label} is read in UTF-8 or UTF-16, not in the encoding it declares ({exc})"
        ) from None
    except expat.ExpatError as exc:
        raise ValidationError(
            f"not a well-formed {label} document (read as UTF-8): {expat.errors.messages[exc.code]}"
            f" at line {exc.lineno}, column {exc.offset + 1}"
        ) from None


def read(text: str, fmt: str, label: str, base: str) -> tuple[list[Quad], dict[str, str]]:
    """The quads of a document in ``prov``'s format ``fmt`` (json, xml, provn) and the
    prefixes it declared; :class:`ValidationError` naming what is wrong, and where."""
    from prov.model import ProvDocument
    from prov.serializers.provrdf import ProvRDFSerializer

    if fmt == "xml":
        _refuse_dtd(text.encode("utf-8"), label)
    if fmt == "json":
        text = _json_prefixes_under(text, base, label)
    try:
        doc = ProvDocument.deserialize(content=text, format=fmt)
    except Exception as exc:  # prov raises anything from its parsers
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise ValidationError(
            f"not a valid {label} document: {type(exc).__name__}: {reason}"
        ) from None
    if not doc.records and not doc.bundles:
        raise ValidationError(f"the {label} document holds no records")
    bundles = [doc, *doc.bundles]
    for bundle in bundles:
        _check_required(bundle, text, label)
    try:
        dataset = ProvRDFSerializer(doc).encode_document(doc)
    except Exception as exc:  # anything from prov
        raise ValidationError(
            f"{label} document read, but it cannot be expressed in PROV-O: "
            f"{type(exc).__name__}: {str(exc)[:300]}"
        ) from None
    terms = _Terms(base, label)
    quads = [
        Quad(terms.node(s), terms.iri(p), terms.value(o), terms.graph(g))
        for s, p, o, g in dataset.quads((None, None, None, None))
    ]
    for bundle in bundles:
        quads += _bare_relations(bundle, terms)
    prefixes = {}
    for ns in doc.get_registered_namespaces():
        if not ns.prefix:
            continue
        try:
            prefixes[ns.prefix] = NamedNode(ns.uri).value
        except ValueError:
            continue  # not an IRI: its names were minted under the base
    return quads + terms.labels, prefixes


def _json_prefixes_under(text: str, base: str, label: str) -> str:
    """PROV-JSON whose prefixes that are no IRI (``"context": "context"``) are bound to
    a namespace under the document's base instead (``prov`` would glue the word to each
    local name, making no IRI)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not a valid {label} document: {exc}") from None
    except RecursionError:
        raise ValidationError(f"not a valid {label} document: nested too deep") from None
    if not isinstance(obj, dict):
        return text
    changed = False
    bundles = obj.get("bundle")
    inner = list(bundles.values()) if isinstance(bundles, dict) else []
    for holder in [obj, *inner]:
        prefixes = holder.get("prefix") if isinstance(holder, dict) else None
        if not isinstance(prefixes, dict):
            continue
        for name, uri in prefixes.items():
            if isinstance(uri, str) and not _SCHEME.match(uri):
                prefixes[name] = urljoin(base, _encode(uri).rstrip("/") + "/")
                changed = True
    return json.dumps(obj) if changed else text


def _encode(text: str) -> str:
    return _NOT_IN_IRI.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), text)


class _Terms:
    """rdflib terms → pyoxigraph terms, minting IRIs for identifiers that are none."""

    def __init__(self, base: str, label: str) -> None:
        self.base, self.label = base, label
        self.minted: dict[str, NamedNode] = {}
        self.labels: list[Quad] = []
        self.blank: dict[str, BlankNode] = {}

    def iri(self, term: Any) -> NamedNode:
        text = str(term)
        found = self.minted.get(text)
        if found is not None:
            return found
        try:
            if _SCHEME.match(text):
                node = NamedNode(text)
                self.minted[text] = node
                return node
        except ValueError:
            pass
        try:
            node = NamedNode(urljoin(self.base, _encode(text)))
        except ValueError as exc:
            raise ValidationError(
                f"{self.label} identifier {text!r} cannot be made an IRI: {exc}"
            ) from None
        self.minted[text] = node
        written = re.split(r"[/#]", text)[-1] or text
        self.labels.append(Quad(node, RDFS.label, Literal(written)))
        return node

    def node(self, term: Any) -> NamedNode | BlankNode:
        from rdflib import BNode

        if isinstance(term, BNode):
            return self.blank.setdefault(str(term), BlankNode())
        return self.iri(term)

    def value(self, term: Any) -> NamedNode | BlankNode | Literal:
        from rdflib import Literal as RdfLiteral

        if not isinstance(term, RdfLiteral):
            return self.node(term)
        lexical = str(term)
        if term.language:
            return Literal(lexical, language=term.language)
        datatype = str(term.datatype) if term.datatype else _XSD_STRING
        typed = _TYPED_STRING.fullmatch(lexical) if datatype == _XSD_STRING else None
        if typed:  # "1973^^xsd:double": a producer that wrote the type into the string
            return Literal(typed[1], datatype=XSD[typed[2]])
        return Literal(lexical, datatype=self.iri(datatype))

    def graph(self, term: Any) -> NamedNode | BlankNode | DefaultGraph:
        from rdflib.graph import DATASET_DEFAULT_GRAPH_ID

        name = getattr(term, "identifier", term)
        if name is None or name == DATASET_DEFAULT_GRAPH_ID:
            return DefaultGraph()
        return self.node(name)


def _bare_relations(bundle: Any, terms: _Terms) -> list[Quad]:
    """Relations given only their first argument, no id and no attribute
    (``wasAssociatedWith(ex:a)``): ``prov`` writes nothing for them; PROV-O says them
    as a qualified relation node of their class."""
    from provml.interop.terms import QUALIFIED

    graph = DefaultGraph() if bundle.is_document() else terms.node(bundle.identifier)
    out: list[Quad] = []
    for record in bundle.get_records():
        if not record.is_relation() or record.identifier is not None or record.extra_attributes:
            continue
        formal = [value for _, value in record.formal_attributes]
        kind = record.get_type().localpart
        if f"qualified{kind}" not in QUALIFIED or not formal or formal[0] is None:
            continue
        if any(v is not None for v in formal[1:]):
            continue  # prov writes it
        node = BlankNode()
        out += [
            Quad(terms.iri(formal[0].uri), PROV[f"qualified{kind}"], node, graph),
            Quad(node, RDF.type, PROV[kind], graph),
        ]
    return out


def _check_required(bundle: Any, text: str, label: str) -> None:
    """Refuse ``-`` where PROV-N requires an identifier (``hadMember(-, ex:e2)``),
    naming its place in the document (``prov`` reads it, then fails making PROV-O)."""
    for record in bundle.get_records():
        keyword = _BOTH_REQUIRED.get(record.get_type().localpart)
        if keyword is None or all(v is not None for _, v in record.formal_attributes[:2]):
            continue
        where = ""
        found = re.search(rf"\b{keyword}\s*\([^)]*?(?<![\w\\])-\s*[,)]", text)
        if found:
            line = text.count("\n", 0, found.start()) + 1
            column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
            where = f"line {line}, column {column}: "
        raise ValidationError(
            f"not a valid {label} document: {where}{keyword} needs both its identifiers, found '-'"
        )
