"""Bearer tokens of the admin endpoints, compared in constant time, and a limit on wrong ones."""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from fastapi import HTTPException, Request
from fastapi.security import HTTPBearer

from sagakit.ops import metrics
from sagakit.settings import ServiceSettings


def bearer_matches(authorization: str | None, expected: str) -> bool:
    """True when ``authorization`` is ``Bearer <expected>``.

    ``hmac.compare_digest`` on bytes: constant time, and a header with non-ASCII characters is
    simply wrong (comparing such ``str`` values raises ``TypeError``, a 500).
    """
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not expected:
        return False
    return hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8"))


# For the OpenAPI: routes that depend on it declare the bearer scheme (``securitySchemes``)
# instead of a free-form ``authorization`` header parameter. It never refuses by itself
# (``auto_error=False``); the route's own check reads the header and answers 401.
bearer_scheme = HTTPBearer(auto_error=False, description="Authorization: Bearer <ADMIN_TOKEN>")


log = logging.getLogger(__name__)


class FailedLogins:
    """Wrong admin credentials per client (its address) over a sliding window: past
    ``max_failures`` in ``window_s``, the client is refused (429 with ``Retry-After``) until its
    oldest failure leaves the window, whatever it presents. A right credential clears its record.

    Only presented credentials count: a request without one is a 401 that guesses nothing. The
    record is per process (each replica limits on its own): a long random token is not guessable
    either way; this keeps a guessing or misconfigured client from hammering the token check and
    flooding the logs. At most ``max_clients`` are tracked (the oldest forgotten first)."""

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._max_clients = max_clients
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    @classmethod
    def of(cls, settings: ServiceSettings) -> FailedLogins:
        """The limit a service's settings ask for (ADMIN_MAX_FAILED_LOGINS, ..._WINDOW_S)."""
        return cls(settings.admin_max_failed_logins, settings.admin_failed_login_window_s)

    def retry_after(self, client: str) -> int | None:
        """Seconds this client must wait before trying again, or None if it may try now."""
        failures = self._recent(client)
        if failures is None or len(failures) < self.max_failures:
            return None
        return max(1, math.ceil(failures[0] + self.window_s - self._clock()))

    def record(self, client: str, *, ok: bool, surface: str) -> None:
        if ok:
            self._failures.pop(client, None)
            return
        failures = self._recent(client) or deque()
        failures.append(self._clock())
        self._failures[client] = failures
        self._failures.move_to_end(client)
        while len(self._failures) > self._max_clients:
            self._failures.popitem(last=False)
        metrics.ADMIN_AUTH_REFUSED.labels(surface, "wrong_credential").inc()
        if len(failures) == self.max_failures:
            log.warning(
                "%s: %d wrong admin credentials from %s within %.0f s; refusing it for a while",
                surface,
                len(failures),
                client,
                self.window_s,
            )

    def _recent(self, client: str) -> deque[float] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        horizon = self._clock() - self.window_s
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures


def client_address(request: Request) -> str:
    """Who is calling: the peer's address (uvicorn's proxy headers, when trusted, set it)."""
    return request.client.host if request.client else "unknown"


def locked_out(limiter: FailedLogins, client: str, surface: str) -> int | None:
    """Seconds ``client`` must wait after too many wrong credentials (counted as a refusal),
    or None if it may try now."""
    wait = limiter.retry_after(client)
    if wait is not None:
        metrics.ADMIN_AUTH_REFUSED.labels(surface, "too_many_failures").inc()
    return wait


def admin_bearer_ok(request: Request, expected: str, limiter: FailedLogins, surface: str) -> bool:
    """The bearer check of an admin route, limited per client: False for a missing or wrong
    token (the route answers 401), a 429 raised while the client is refused."""
    client = client_address(request)
    wait = locked_out(limiter, client, surface)
    if wait is not None:
        raise HTTPException(
            429,
            detail=f"too many wrong admin credentials from this address; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    header = request.headers.get("authorization")
    ok = bearer_matches(header, expected)
    if header is not None:
        limiter.record(client, ok=ok, surface=surface)
    return ok
