"""Any SPARQL 1.1 server as the store: Query, Update and Graph Store HTTP Protocol.

Chosen by URL::

    oxigraph+http://127.0.0.1:7878          Oxigraph server (/query, /update, /store)
    virtuoso+http://127.0.0.1:8890          Virtuoso (/sparql, /sparql-graph-crud)
    sparql+http://host/path?update=URL&store=URL&graph=IRI
                                            any other: query at the URL, the rest optional

Writes: one Graph Store POST per batch (N-Quads to a dataset endpoint such as Oxigraph's
``/store``, or N-Triples per graph where the server takes one graph per request), so a
batch lands whole; without a Graph Store endpoint, ``INSERT DATA`` in chunks of
``chunk`` triples (not atomic across chunks: servers such as Virtuoso refuse larger
statements). Queries go to the server as they are — lineage questions run there, nothing
is loaded into Python — with provml's prefixes declared in front; answers come back as
pyoxigraph result objects, so the query service treats every store alike.

Query time limit: the ``timeout`` option of :meth:`SparqlStore.query` (what is left of
``PROVML_QUERY_TIMEOUT``) bounds the HTTP request, and is sent to servers that take one:
Virtuoso's ``timeout`` (milliseconds; its "anytime" partial answer, flagged by
``X-SQL-State: S1TAT``, is refused as a timeout rather than passed on as the answer),
or for other servers the parameter named by ``?timeout_param=`` (seconds, e.g. Fuseki,
GraphDB) or ``?timeout_ms_param=`` (milliseconds, e.g. Blazegraph's
``maxQueryTimeMillis``). The Oxigraph server has no such parameter: there only the
HTTP request is bounded.

``graph=``: keep provml's triples in this named graph and use it as the default graph of
every query (``default-graph-uri``). Virtuoso needs it: its default graph is the union
of every graph, its own system graphs included.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import IO, Any, cast
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pyoxigraph
import requests
import urllib3
from pyoxigraph import DefaultGraph, NamedNode, Quad, QueryResultsFormat, RdfFormat

from manager.store.base import Store
from provml.core.errors import ConfigError, ProvmlError, QueryError, QueryTimeout, StoreError
from provml.core.sparql_text import OPAQUE
from provml.core.vocab import PREFIXES


#: flavour → (query path, update path, graph store path, graph store takes N-Quads, graph)
class StoreRefused(ProvmlError):
    """The store answered a write with a client error: retrying would not help."""

    status = 422
    code = "store_refused"


PRESETS: dict[str, tuple[str, str, str | None, bool, str | None]] = {
    "oxigraph": ("/query", "/update", "/store", True, None),
    "virtuoso": ("/sparql", "/sparql", "/sparql-graph-crud", False, "https://provml.dev/graph/provml"),
}  # fmt: skip
PROLOGUE = "".join(f"PREFIX {p}: <{iri}>\n" for p, iri in PREFIXES.items())
_ACCEPT_SOLUTIONS = "application/sparql-results+json"
_ACCEPT_GRAPH = "application/n-triples, text/plain;q=0.9, text/turtle;q=0.8"
#: flavour → (query parameter that bounds a query's time on the server, units per second)
TIMEOUT_PARAMS: dict[str, tuple[str, float]] = {"virtuoso": ("timeout", 1000.0)}
#: seconds to connect to the server at most
CONNECT_TIMEOUT = 10.0
_FORM = re.compile(r"\b(SELECT|ASK|CONSTRUCT|DESCRIBE)\b", re.IGNORECASE)


def query_form(sparql: str) -> str:
    """SELECT, ASK, CONSTRUCT or DESCRIBE: the first such keyword outside comments,
    strings and IRIs (what to ask the server for)."""
    match = _FORM.search(OPAQUE.sub(" ", sparql))
    return match.group(1).upper() if match else "SELECT"


class _Body(io.RawIOBase):
    """A streamed HTTP answer as a binary file whose failures are OSErrors: a body cut
    short (chunked or Content-Length), a reset, a read timeout (urllib3 raises its own
    exceptions for those). Gzip or deflate is undone as it is read."""

    def __init__(self, resp: requests.Response) -> None:
        super().__init__()
        self._resp = resp
        self._raw = resp.raw
        self._raw.decode_content = True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._raw.read(len(buffer))
        except (urllib3.exceptions.HTTPError, requests.RequestException) as exc:
            raise OSError(f"reading the answer from {self._resp.url} failed: {exc}") from None
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._resp.close()
        super().close()


class SparqlStore(Store):
    def __init__(
        self,
        query_url: str,
        update_url: str | None = None,
        store_url: str | None = None,
        *,
        store_takes_quads: bool = False,
        graph: str | None = None,
        flavour: str = "sparql",
        timeout: float = 60.0,
        chunk: int = 400,
        timeout_param: tuple[str, float] | None = None,
    ) -> None:
        self.query_url = query_url
        self.update_url = update_url or query_url
        self.store_url = store_url
        self.store_takes_quads = store_takes_quads
        self.graph = NamedNode(graph) if graph else None
        self.flavour = flavour
        self.dialect = flavour if flavour == "virtuoso" else None
        self.timeout = timeout
        self.chunk = chunk
        self.timeout_param = timeout_param or TIMEOUT_PARAMS.get(flavour)
        self.http = requests.Session()

    @classmethod
    def from_url(cls, scheme: str, rest: str) -> SparqlStore:
        flavour, _, proto = scheme.partition("+")
        if proto not in ("http", "https"):
            raise ConfigError(f"a SPARQL store URL is {flavour}+http://… or +https://…")
        parts = urlsplit(f"{proto}:{rest}")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        if flavour in PRESETS:
            q, u, s, quads, graph = PRESETS[flavour]
            return cls(
                base + q,
                base + u,
                options.get("store", base + s if s else None),
                store_takes_quads=quads,
                graph=options.get("graph", graph),
                flavour=flavour,
            )
        timeout_param = None
        if options.get("timeout_param"):
            timeout_param = (options["timeout_param"], 1.0)
        elif options.get("timeout_ms_param"):
            timeout_param = (options["timeout_ms_param"], 1000.0)
        if flavour != "sparql":
            raise ConfigError(
                f"unknown SPARQL store flavour {flavour!r}; known: sparql, {', '.join(PRESETS)}"
            )
        return cls(
            base,
            options.get("update"),
            options.get("store"),
            store_takes_quads=options.get("quads") == "1",
            graph=options.get("graph"),
            timeout_param=timeout_param,
        )

    # ---- writes ------------------------------------------------------------------------
    def add(self, quads: Sequence[Quad]) -> None:
        if not quads:
            return
        if self.graph is not None:  # the default graph is ours
            quads = [
                Quad(q.subject, q.predicate, q.object, self.graph)
                if isinstance(q.graph_name, DefaultGraph)
                else q
                for q in quads
            ]
        if self.store_url and self.store_takes_quads:
            body = pyoxigraph.serialize(quads, format=RdfFormat.N_QUADS) or b""
            self._post(self.store_url, body, "application/n-quads", {})
            return
        by_graph: dict[Any, list[Any]] = {}
        for q in quads:
            by_graph.setdefault(q.graph_name, []).append(q.triple)
        for graph, triples in by_graph.items():
            if self.store_url:
                params = {"default": ""} if isinstance(graph, DefaultGraph) else {}
                if not isinstance(graph, DefaultGraph):
                    params = {"graph-uri" if self.flavour == "virtuoso" else "graph": graph.value}
                body = pyoxigraph.serialize(triples, format=RdfFormat.N_TRIPLES) or b""
                self._post(self.store_url, body, "application/n-triples", params)
            else:
                for i in range(0, len(triples), self.chunk):
                    part = triples[i : i + self.chunk]
                    data = (pyoxigraph.serialize(part, format=RdfFormat.N_TRIPLES) or b"").decode()
                    if not isinstance(graph, DefaultGraph):
                        data = f"GRAPH {graph} {{ {data} }}"
                    self._update(f"INSERT DATA {{ {data} }}")

    @property
    def keeps_lineage_index(self) -> bool:
        # in one graph of a shared server, the index's graph would be shared by every
        # deployment there, and its mark would speak for data it does not cover
        return self.dialect is None and self.graph is None

    def update(self, sparql: str) -> None:
        if self.graph is not None:
            sparql = f"WITH {self.graph} {sparql}"
        self._update(PROLOGUE + sparql)

    def _update(self, text: str) -> None:
        self._post(self.update_url, None, None, {}, form={"update": text})

    def _post(
        self,
        url: str,
        body: bytes | None,
        ctype: str | None,
        params: dict[str, str],
        form: dict[str, str] | None = None,
    ) -> requests.Response:
        headers = {"Content-Type": ctype} if ctype else {}
        try:
            resp = self.http.post(url, params=params, data=form if form is not None else body,
                                  headers=headers, timeout=self.timeout)  # fmt: skip
        except requests.RequestException as exc:
            raise StoreError(f"the SPARQL store at {url} is unreachable: {exc}") from None
        if resp.status_code >= 400:
            message = (
                f"the SPARQL store at {url} refused the write: HTTP {resp.status_code} "
                f"{resp.text[:500]}"
            )
            if resp.status_code >= 500 or resp.status_code in (408, 429):
                raise StoreError(message)  # worth trying again
            # the same write would be refused again: the tracker sets the batch aside
            # (refused.jsonl) rather than retrying it at the head of its queue
            raise StoreRefused(message)
        return resp

    # ---- reads -------------------------------------------------------------------------
    def query(self, sparql: str, **options: Any) -> Any:
        params: list[tuple[str, str]] = []
        default = options.pop("default_graph", None)
        named = options.pop("named_graphs", None)
        base = options.pop("base_iri", None)
        limit = options.pop("timeout", None)
        seconds = float(limit) if limit is not None else self.timeout
        if options:
            raise QueryError(f"unsupported query options for a SPARQL store: {sorted(options)}")
        if default is not None or named is not None:
            params += [("default-graph-uri", g.value) for g in (default or [])]
            params += [("named-graph-uri", g.value) for g in (named or [])]
        elif self.graph is not None:
            params.append(("default-graph-uri", self.graph.value))
        if limit is not None and self.timeout_param is not None:
            name, per_second = self.timeout_param
            params.append((name, str(max(1, int(seconds * per_second)))))
        text = (f"BASE <{base}>\n" if base else "") + PROLOGUE + sparql
        graph_form = query_form(sparql) in ("CONSTRUCT", "DESCRIBE")
        accept = _ACCEPT_GRAPH if graph_form else _ACCEPT_SOLUTIONS
        try:
            resp = self.http.post(
                self.query_url,
                params=params,
                data={"query": text},
                headers={"Accept": accept},
                # a server that ignores its own limit still answers within ours (+ slack)
                timeout=(min(CONNECT_TIMEOUT, seconds + 1), seconds + 1),
                # solutions are parsed as they arrive: the caller's row limit stops reading
                # a huge answer (query.limits), instead of downloading all of it first
                stream=not graph_form,
            )
        except requests.ReadTimeout:
            raise QueryTimeout(
                f"the SPARQL store at {self.query_url} did not answer within {seconds:.3g} s"
            ) from None
        except requests.RequestException as exc:
            raise StoreError(
                f"the SPARQL store at {self.query_url} is unreachable: {exc}"
            ) from None
        if resp.headers.get("X-SQL-State") == "S1TAT":  # Virtuoso's partial "anytime" answer
            raise QueryTimeout(
                f"the SPARQL store stopped the query at its time limit ({seconds:.3g} s): "
                f"{resp.headers.get('X-SQL-Message', '')[:200]}"
            )
        if 400 <= resp.status_code < 500:
            raise QueryError(f"the SPARQL store refused the query: {resp.text[:500]}")
        if resp.status_code >= 500:
            raise StoreError(f"the SPARQL store failed: HTTP {resp.status_code} {resp.text[:300]}")
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if not graph_form:
            try:
                body = cast(IO[bytes], _Body(resp))
                result = pyoxigraph.parse_query_results(body, format=QueryResultsFormat.JSON)
            except (SyntaxError, ValueError, OSError) as exc:
                resp.close()
                raise StoreError(
                    f"the SPARQL store's answer is not SPARQL JSON results: {exc}"
                ) from None
            # a solution the server sends broken surfaces as the rows are read
            if isinstance(result, pyoxigraph.QuerySolutions) and [
                v.value for v in result.variables
            ] == ["__ASK_RETVAL"]:  # Virtuoso answers ASK as a one-column table
                truth = b"true" if any(True for _ in result) else b"false"
                return pyoxigraph.parse_query_results(
                    b'{"head":{},"boolean":' + truth + b"}", format=QueryResultsFormat.JSON
                )
            return result
        fmt = RdfFormat.from_media_type(ctype) or RdfFormat.N_TRIPLES
        graph = pyoxigraph.Store()  # a graph answer, as the same result type as embedded
        graph.load(resp.content, format=fmt)
        return graph.query("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }")

    def count(self) -> int:
        text = (
            "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
            if self.graph is not None
            else "SELECT (COUNT(*) AS ?n) WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }"
        )
        for row in self.query(text):
            return int(row[0].value)
        return 0

    def describe(self) -> str:
        where = f", graph {self.graph.value}" if self.graph is not None else ""
        return f"{self.flavour} SPARQL store at {self.query_url}{where}"
