"""Request bodies over a limit answer 413, however they arrive.

The body is read (up to the limit) before the app sees it, so a chunked body without a
Content-Length is refused the same way as one that announces its size, and never half-parsed
(FastAPI would turn an error raised mid-read into a 400 "error parsing the body").
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sagakit.http.errors import error_response

DEFAULT_MAX_BODY_BYTES = 65_536


class BodySizeLimit:
    """ASGI middleware; the limit is ``app.state.max_body_bytes`` when set, else ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _limit(self, scope: Scope) -> int:
        app = scope.get("app")
        state = getattr(app, "state", None)
        limit = getattr(state, "max_body_bytes", None)
        return int(limit) if limit is not None else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            if length.isdigit():
                await self._too_large(limit, scope, receive, send)
            else:
                response = error_response(400, "bad_request", "invalid Content-Length header")
                await response(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(limit, scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # then wait for the disconnect, as the server would say it

        await self.app(scope, replay, send)

    @staticmethod
    async def _too_large(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "body_too_large", f"request body over {limit} bytes")
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
