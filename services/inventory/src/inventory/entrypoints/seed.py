"""`python -m inventory.entrypoints.seed [--reset]`: load the sample catalog.

Without ``--reset``: adds the sample products that are missing and leaves existing ones alone
(safe to run any number of times). With ``--reset``: also puts every sample product back to its
sample stock, except products with units still held by an order (those are refused, exit 1).
The database comes from the inventory settings (``INVENTORY_DATABASE_URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from inventory.adapters.repository import InventoryRepository
from inventory.domain.catalog import NewProduct
from inventory.service_layer import catalog
from inventory.settings import Settings
from sagakit.db.engine import create_engine, create_session_factory
from sagakit.db.tls import AS_THE_URL_SAYS, PostgresTls

SAMPLE_CATALOG: tuple[NewProduct, ...] = (
    NewProduct("widget", "Widget", 1999, "USD", 1000),
    NewProduct("gadget", "Gadget", 4999, "USD", 500),
    NewProduct("gizmo", "Gizmo", 999, "USD", 1000),
    NewProduct("limited-edition", "Limited edition", 15000, "USD", 10),
    NewProduct("sold-out", "Sold out", 2500, "USD", 0),
    NewProduct("euro-widget", "Euro widget", 1899, "EUR", 200),
)


async def run(
    database_url: str,
    *,
    reset: bool,
    products: Sequence[NewProduct],
    tls: PostgresTls = AS_THE_URL_SAYS,
) -> int:
    """Seed (or reset) the catalog, print what was done; returns the exit code."""
    engine = create_engine(database_url, pool_size=1, tls=tls)
    try:
        async with create_session_factory(engine)() as session:
            repo = InventoryRepository(session)
            if reset:
                done, refused = await catalog.reset(repo, products)
            else:
                done, refused = await catalog.seed(repo, products), []
    finally:
        await engine.dispose()
    for line in done:
        print(line)
    for line in refused:
        print(line, file=sys.stderr)
    if refused:
        print(
            "some products were not reset: release (or cancel) the orders holding them first",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inventory.entrypoints.seed", description="Load the sample catalog."
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help="put every sample product back to its sample stock (refused while units are held)",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    return asyncio.run(
        run(
            settings.database_url.get_secret_value(),
            reset=args.reset,
            products=SAMPLE_CATALOG,
            tls=settings.database_tls,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
