"""How the tracker hands resolved batches to the manager."""

from __future__ import annotations

import abc
from typing import Any, Protocol

import orjson
import requests

from provml.core.errors import ProvmlError, StoreError, UpstreamError
from provml.core.wire import Batch


class Forwarder(abc.ABC):
    @abc.abstractmethod
    def forward(self, batch: Batch) -> dict[str, Any]:
        """Deliver a resolved batch; return the manager's answer or raise."""

    @abc.abstractmethod
    def forward_body(self, body: bytes) -> dict[str, Any]:
        """Deliver a resolved batch given as its JSON. Raise :class:`UpstreamError` when
        trying again may work, another :class:`ProvmlError` when the batch is refused."""

    def prepare(self, batch: Batch) -> Any:
        """What :meth:`forward_group` is handed for ``batch`` when this process resolved
        it (called in the request's thread, while the forwarder writes): here nothing."""
        return None

    def forward_group(self, bodies: list[bytes], batches: list[Any]) -> list[dict[str, Any]]:
        """Deliver several resolved batches (their JSON, and where this process still
        holds it, what :meth:`prepare` made of each, else None) in one go, ideally one
        write; the manager's answer for each. Raises as :meth:`forward_body`; on a
        refusal, nothing or only some may be written: the caller delivers them one by
        one to find the bad one (writing a batch again changes nothing). Here: one by
        one."""
        return [self.forward_body(body) for body in bodies]

    def close(self) -> None:
        return None


class BatchWriter(Protocol):
    """What takes a resolved batch in the same process (``manager.service.Manager``; the
    tracker does not import the manager, the composition root hands it one)."""

    def apply(self, batch: Batch) -> dict[str, Any]: ...

    def apply_json(self, obj: Any) -> dict[str, Any]: ...

    def load_json(self, obj: Any) -> Any: ...

    def map(self, batch: Batch) -> Any: ...

    def apply_many(self, batches: list[Any]) -> list[dict[str, Any]]: ...


class InProcessForwarder(Forwarder):
    """Under ``provml serve``: a direct call into the manager in the same process."""

    def __init__(self, manager: BatchWriter) -> None:
        self.manager = manager

    def forward(self, batch: Batch) -> dict[str, Any]:
        return self.manager.apply(batch)

    def forward_body(self, body: bytes) -> dict[str, Any]:
        try:
            result = self.manager.apply_json(orjson.loads(body))
        except StoreError as exc:  # the store failed: worth trying again
            raise UpstreamError(str(exc)) from exc
        return result

    def prepare(self, batch: Batch) -> Any:
        """The batch mapped to quads (in the request's thread: the mapping of one batch
        overlaps the write of others)."""
        return self.manager.map(batch)

    def forward_group(self, bodies: list[bytes], batches: list[Any]) -> list[dict[str, Any]]:
        """One write for the group; a batch this process resolved and mapped (and still
        holds) is not parsed, checked and mapped again."""
        try:
            ready = [  # a resolved batch, or an OpenLineage event (docs/openlineage.md)
                batch if batch is not None else self.manager.load_json(orjson.loads(body))
                for body, batch in zip(bodies, batches, strict=True)
            ]
            return self.manager.apply_many(ready)
        except StoreError as exc:  # the store failed: worth trying again
            raise UpstreamError(str(exc)) from exc


class HttpForwarder(Forwarder):
    """A tracker run on its own: POST to the manager's ``/api/v1/batches``, with
    ``token`` (capture scope) when the manager has tokens. A manager that refuses the
    token (401, or 403 with a ``WWW-Authenticate`` challenge) is a configuration to fix,
    not a bad batch: the batch stays queued and is retried."""

    def __init__(self, url: str, *, timeout: float = 30.0, token: str | None = None) -> None:
        self.endpoint = url.rstrip("/") + "/api/v1/batches"
        self.timeout = timeout
        self._session = requests.Session()
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    def forward(self, batch: Batch) -> dict[str, Any]:
        return self.forward_body(orjson.dumps(batch.to_json()))

    def forward_body(self, body: bytes) -> dict[str, Any]:
        return self._post(body)

    def forward_group(self, bodies: list[bytes], batches: list[Any]) -> list[dict[str, Any]]:
        """One request, a JSON array of the batches, which the manager writes at once
        (a manager without group writes refuses the array: the tracker then sends them
        one by one)."""
        if len(bodies) == 1:
            return [self._post(bodies[0])]
        answer = self._post(b"[" + b",".join(bodies) + b"]")
        answers = answer.get("batches")
        if not isinstance(answers, list) or len(answers) != len(bodies):
            # e.g. a manager without group writes: the tracker sends them one by one
            raise ProvmlError(f"the manager answered a group unexpectedly: {str(answer)[:200]}")
        return answers

    def _post(self, body: bytes) -> dict[str, Any]:
        try:
            resp = self._session.post(
                self.endpoint,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise UpstreamError(f"manager unreachable at {self.endpoint}: {exc}") from exc
        if resp.status_code == 401 or (
            resp.status_code == 403 and "WWW-Authenticate" in resp.headers
        ):
            raise UpstreamError(
                f"the manager refused the tracker's token ({resp.status_code}): give the "
                "tracker a token with the capture scope (--manager-token, "
                "PROVML_MANAGER_TOKEN)"
            )
        if resp.status_code >= 500 or resp.status_code == 429:
            raise UpstreamError(f"manager failed ({resp.status_code}): {resp.text[:500]}")
        if resp.status_code >= 400:
            error = ProvmlError(f"manager refused the batch: {resp.text[:500]}")
            error.status, error.code = resp.status_code, "refused_by_manager"
            raise error
        result: dict[str, Any] = resp.json()
        return result

    def close(self) -> None:
        self._session.close()
