"""Bearer tokens of the admin endpoints, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi.security import HTTPBearer


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
