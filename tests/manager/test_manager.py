from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from manager.app import create_app
from manager.store import open_store
from manager.store.oxigraph import OxigraphStore
from provml.core import lineage_index
from provml.core.errors import ConfigError, StoreError
from provml.core.resolve import resolve_batch
from provml.core.wire import validate_batch
from tests.conftest import full_records, make_batch


def resolved(records: list[dict]) -> dict:  # type: ignore[type-arg]
    return resolve_batch(validate_batch(make_batch(records))).to_json()


def test_manager_writes_resolved_and_plain_batches() -> None:
    app = create_app({"store": "memory:"})
    client = app.test_client()
    resp = client.post(
        "/api/v1/batches",
        data=orjson.dumps(resolved(full_records())),
        content_type="application/json",
    )
    assert resp.status_code == 200, resp.json
    store = app.extensions["provml.store"]
    edges = "SELECT * WHERE { ?a prov:wasDerivedFrom|prov:wasInfluencedBy ?b }"
    derived = len(list(store.query(edges)))
    assert derived > 0  # the derivation update ran after the write
    # and the lineage index (provml.core.lineage_index), in its own graph, marked complete
    index = "SELECT * WHERE { GRAPH provml:lineageIndex { ?a ?p ?b } }"
    indexed = len(list(store.query(index)))
    assert bool(store.query(lineage_index.IS_MARKED))
    assert store.count() == resp.json["triples"] + derived + indexed
    plain = make_batch(full_records())
    assert client.post("/api/v1/batches", json=plain).status_code == 200
    assert client.get("/api/v1/stats").json["batches"] == 2


def test_manager_refuses_forged_identifiers() -> None:
    app = create_app({"store": "memory:"})
    batch = resolved(full_records())
    batch["records"][0]["plan_id"] = "https://provml.dev/id/plan/other"
    resp = app.test_client().post("/api/v1/batches", json=batch)
    assert resp.status_code == 400
    assert app.extensions["provml.store"].count() == 0


def test_on_disk_store_persists_and_is_single_owner(tmp_path: Path) -> None:
    path = str(tmp_path / "store")
    store = open_store("oxigraph:" + path)
    assert isinstance(store, OxigraphStore)
    app = create_app({"store": store})
    assert (
        app.test_client().post("/api/v1/batches", json=resolved(full_records())).status_code == 200
    )
    count = store.count()
    with pytest.raises(StoreError, match="another provml process"):
        open_store(path)  # a second opener is refused while the first holds it
    store.close()
    del app, store
    import gc

    gc.collect()
    again = open_store(path)
    assert again.count() == count


def test_unknown_store_scheme() -> None:
    with pytest.raises(ConfigError, match="no store backend"):
        open_store("cassandra://x")
