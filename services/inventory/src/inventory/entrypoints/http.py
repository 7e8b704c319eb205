"""The catalog HTTP API, served on the service's HTTP port beside the probes.

``POST /products`` adds a product, ``POST /products/{id}/stock`` restocks it, ``GET /products``
and ``GET /products/{id}`` read price and stock (available and reserved). The writes need the admin
token (``Authorization: Bearer <ADMIN_TOKEN>``); the reads are public. Errors answer
``{"error", "message", "details"}`` (``sagakit.http.errors``), declared per route.
"""

# No ``from __future__ import annotations`` here: FastAPI must see the dependency annotations of
# the routes defined inside ``catalog_router`` as objects, not as strings it cannot resolve.

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Security, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from inventory.adapters.repository import InventoryRepository
from inventory.domain.catalog import NewProduct
from inventory.domain.errors import ProductAlreadyExists, ProductNotFound
from inventory.service_layer import catalog
from sagakit.contracts.text import CurrencyCode, line
from sagakit.contracts.types import ProductId
from sagakit.http.errors import error_responses
from sagakit.http.links import Link
from sagakit.ops.auth import FailedLogins, admin_bearer_ok, bearer_scheme

MAX_PRICE_CENTS = 1_000_000_000
MAX_STOCK = 1_000_000_000

_PRODUCT = "GET /products/{product_id}"
_RESTOCK = "POST /products/{product_id}/stock"
_PRODUCT_ID = {"product_id": "$response.body#/product_id"}
# In the OpenAPI (``sagakit.http.links.declare_links``): from a product to its stock and back.
CATALOG_LINKS = (
    Link("POST /products", 201, _PRODUCT, _PRODUCT_ID, "the product just added"),
    Link("POST /products", 201, _RESTOCK, _PRODUCT_ID, "restock it (admin)"),
    Link(_PRODUCT, 200, _RESTOCK, _PRODUCT_ID, "restock this product (admin)"),
    Link(_RESTOCK, 200, _PRODUCT, _PRODUCT_ID, "the product after restocking"),
)


class ProductIn(BaseModel):
    """A new product. Strict integers: a price of 19.99 or "1999" is refused, never rounded."""

    model_config = ConfigDict(extra="forbid")

    product_id: ProductId
    # Free text on one line: no control character (NUL above all: PostgreSQL cannot store it).
    name: line(200)  # type: ignore[valid-type]
    price: Annotated[int, Field(ge=0, le=MAX_PRICE_CENTS, strict=True)]
    currency: CurrencyCode
    stock: Annotated[int, Field(ge=0, le=MAX_STOCK, strict=True)]


class RestockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: Annotated[int, Field(gt=0, le=MAX_STOCK, strict=True)]


class ProductOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    product_id: str
    name: str
    price: int
    currency: str
    available: int
    reserved: int


def catalog_router(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    admin_token: str,
    failed_logins: FailedLogins,
) -> APIRouter:
    # Plain JSONResponse: the routes have response models, which FastAPI serialises itself
    # (the app's default ORJSONResponse is deprecated by FastAPI and warns on every request).
    router = APIRouter(prefix="/products", tags=["catalog"], default_response_class=JSONResponse)

    async def repository() -> AsyncIterator[InventoryRepository]:
        async with session_factory() as session:
            yield InventoryRepository(session)

    Repository = Annotated[InventoryRepository, Depends(repository)]

    async def require_admin(
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    ) -> None:
        if not admin_bearer_ok(request, admin_token, failed_logins, "catalog"):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="catalog writes need 'Authorization: Bearer <ADMIN_TOKEN>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    admin = [Depends(require_admin)]
    Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=ProductOut,
        dependencies=admin,
        responses=error_responses(401, 409, 429),
    )
    async def add_product(body: ProductIn, repo: Repository) -> ProductOut:
        new = NewProduct(body.product_id, body.name, body.price, body.currency, body.stock)
        try:
            product = await catalog.add_product(repo, new)
        except ProductAlreadyExists as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=exc.message) from None
        return ProductOut.model_validate(product)

    @router.post(
        "/{product_id}/stock",
        response_model=ProductOut,
        dependencies=admin,
        responses=error_responses(401, 404, 429),
    )
    async def restock(product_id: Id, body: RestockIn, repo: Repository) -> ProductOut:
        try:
            product = await catalog.restock(repo, product_id, body.quantity)
        except ProductNotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=exc.message) from None
        return ProductOut.model_validate(product)

    @router.get("", response_model=list[ProductOut])
    async def list_products(repo: Repository) -> list[ProductOut]:
        return [ProductOut.model_validate(p) for p in await catalog.list_products(repo)]

    @router.get("/{product_id}", response_model=ProductOut, responses=error_responses(404))
    async def get_product(product_id: Id, repo: Repository) -> ProductOut:
        try:
            product = await catalog.get_product(repo, product_id)
        except ProductNotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=exc.message) from None
        return ProductOut.model_validate(product)

    return router
