"""The payment service's schema holds its own records only: the simulated Stripe's tables come
from the simulator's own code, and a database migrated before that loses the old ones."""

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from payment.adapters.simulated_stripe import SimulatedStripe
from payment.domain.gateway import ChargeSucceeded
from sagakit.db.migrations import upgrade

pytestmark = pytest.mark.integration

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
SIMULATOR_TABLES = ("gateway_charges", "gateway_refunds")


async def _exists(sessions, name: str) -> bool:
    async with sessions() as session:
        return bool(await session.scalar(text(f"SELECT to_regclass('{name}') IS NOT NULL")))


async def test_the_migrations_create_no_simulator_table(payment_sessions) -> None:
    for table in SIMULATOR_TABLES:
        assert not await _exists(payment_sessions, f"public.{table}")


async def test_the_simulator_creates_its_own_store(payment_sessions, payment_database) -> None:
    async with payment_sessions() as session, session.begin():
        await session.execute(text("DROP SCHEMA IF EXISTS simulated_stripe CASCADE"))
    assert not await _exists(payment_sessions, "simulated_stripe.charges")

    gateways = [SimulatedStripe(payment_database) for _ in range(3)]  # three processes at once
    results = await asyncio.gather(
        *(
            g.charge(
                amount=100,
                currency="USD",
                payment_method="pm_card_visa",
                idempotency_key=f"k{i}",
                metadata={},
            )
            for i, g in enumerate(gateways)
        )
    )

    assert all(isinstance(r, ChargeSucceeded) for r in results)
    assert await _exists(payment_sessions, "simulated_stripe.charges")
    assert await _exists(payment_sessions, "simulated_stripe.refunds")


async def test_an_older_database_loses_the_gateway_tables(payment_sessions, payment_db_url) -> None:
    async with payment_sessions() as session, session.begin():
        for table in SIMULATOR_TABLES:
            await session.execute(text(f"CREATE TABLE {table} (idempotency_key text)"))
        await session.execute(text("UPDATE alembic_version SET version_num = '0003'"))

    await asyncio.to_thread(upgrade, ALEMBIC_INI, payment_db_url)

    for table in SIMULATOR_TABLES:
        assert not await _exists(payment_sessions, f"public.{table}")
    async with payment_sessions() as session:
        assert await session.scalar(text("SELECT version_num FROM alembic_version")) == "0004"
