"""HTTP mode: batches POSTed to the tracker's ``/api/v1/batches``."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import requests

from capture_lib.transport.base import SENT, Refused, Transport, TransportError

log = logging.getLogger(__name__)


class HttpTransport(Transport):
    """POST each batch; retry connection errors, 429 and 5xx a few times with jittered
    backoff (honouring ``Retry-After``), then give up with a retryable error so a
    :class:`~capture_lib.transport.spool.SpoolingTransport` can spool to disk."""

    RETRIES = 3
    BACKOFF = 0.2  # seconds, doubled each attempt
    MAX_WAIT = 5.0

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        token: str | None = None,
        retries: int | None = None,
    ) -> None:
        self.endpoint = url.rstrip("/") + "/api/v1/batches"
        self.retries = self.RETRIES if retries is None else retries
        self.timeout = timeout
        self.token = token
        self._session = self._new_session()

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Content-Type"] = "application/json"
        if self.token:
            session.headers["Authorization"] = f"Bearer {self.token}"
        return session

    def after_fork(self) -> None:
        # the parent's pooled connections must not be shared with the child
        self._session = self._new_session()

    def _refusal(self, status: int, text: str) -> str:
        """What a refusal means, with the tracker's own words."""
        hint = _HINTS.get(status, "")
        return f"{self.endpoint} refused the batch ({status}{hint}): {text[:300].strip()}"

    def send(self, batch: dict[str, Any], body: bytes) -> str:
        delay = self.BACKOFF
        for attempt in range(self.retries + 1):
            wait = delay * (0.5 + random.random())
            try:
                resp = self._session.post(self.endpoint, data=body, timeout=self.timeout)
            except requests.RequestException as exc:
                error = TransportError(f"tracker unreachable: {exc}")
            else:
                if resp.status_code < 300:
                    return SENT
                if resp.status_code == 429 or resp.status_code >= 500:
                    error = TransportError(f"tracker answered {resp.status_code}")
                    wait = max(wait, _retry_after(resp.headers.get("Retry-After")))
                else:
                    raise Refused(
                        self._refusal(resp.status_code, resp.text),
                        reason=f"http_{resp.status_code}",
                        records=len(batch.get("records", ())),
                    )
            if attempt == self.retries:
                raise error
            log.debug("retrying batch %s in %.2fs: %s", batch["batch"], wait, error)
            time.sleep(min(wait, self.MAX_WAIT))
            delay *= 2
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._session.close()


#: why a tracker answers these statuses, said with the refusal
_HINTS = {
    401: ": no access token, or one the service does not know (PROVML_TOKEN)",
    403: ": the access token lacks the capture scope",
    404: ": no provml tracker at this URL; PROVML_URL is the service's base URL",
    413: ": the batch is larger than the service accepts",
}


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0
