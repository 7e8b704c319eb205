"""An async-only HTTP client for the Stripe library, on httpx.

The library's own ``stripe.HTTPXClient`` (16.x) sends the form body as ``data=<str>``, which
httpx 0.28 deprecates (a DeprecationWarning on every call, an error under our tests' warning
policy). This subclass of the library's documented extension point sends it as ``content=``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, NoReturn

import httpx
import stripe


class AsyncHttpxClient(stripe.HTTPClient):
    name = "httpx-async"

    def __init__(self, *, timeout_s: float) -> None:
        super().__init__()
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        try:
            response = await self._client.request(
                method, url, headers=dict(headers), content=post_data or None
            )
        except httpx.HTTPError as exc:
            # The library turns this into APIConnectionError handling (retries, if enabled).
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]
                f"network error talking to Stripe: {type(exc).__name__}: {exc}",
                should_retry=True,
            ) from exc
        return response.content, response.status_code, response.headers

    async def sleep_async(self, secs: float) -> None:
        await asyncio.sleep(secs)

    async def close_async(self) -> None:
        await self._client.aclose()

    def request(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError("AsyncHttpxClient only serves the library's *_async methods")

    def close(self) -> None:
        """Nothing to release synchronously; ``close_async`` closes the connection pool."""
