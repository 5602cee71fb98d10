"""docs/deploy.md's "Many machines" commands: real options, one broker and one store."""

from __future__ import annotations

from tests.test_deploy import DEPLOY_DOC, components, doc_serve_commands, parse


def test_deploy_doc_broker_commands_agree() -> None:
    parsed = [parse(argv)[1] for argv in doc_serve_commands()]
    brokered = [p for p in parsed if p.get("broker")]
    managers = [p for p in brokered if components(p) == {"manager"}]
    trackers = [p for p in brokered if components(p) == {"tracker"}]
    assert len(managers) == 2 and len(trackers) == 1 and len(brokered) == 3
    assert len({p["broker"] for p in brokered}) == 1
    assert len({p["store_url"] for p in managers}) == 1 and managers[0]["store_url"]
    assert len({p["data_dir"] for p in brokered}) == 3  # each its own audit log
    assert not trackers[0]["manager_url"]
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    assert "--appendfsync always" in text and 'mode="broker"' in text
