"""A test run deletes the topics it created at its end, and the ones the services derived from
them (``<topic>.dlq``, topics auto-created under a test's prefix), but nothing else on the
broker."""

import uuid
from collections.abc import Sequence

import pytest
from aiokafka.admin import NewTopic

from sagakit.messaging.kafka_clients import PLAINTEXT, kafka_admin
from sagakit.testing import kafka
from sagakit.testing.kafka import create_topics, drop_created_topics, unique_name

pytestmark = pytest.mark.integration


async def admin_call(bootstrap: str, call: str, *args: object) -> object:
    admin = kafka_admin(bootstrap, PLAINTEXT)
    await admin.start()
    try:
        return await getattr(admin, call)(*args)
    finally:
        await admin.close()


async def made_outside_the_run(bootstrap: str, names: Sequence[str]) -> None:
    """Topics as a service (auto-creation) or a person makes them: not recorded by the run."""
    await admin_call(bootstrap, "create_topics", [NewTopic(n, 1, 1) for n in names])


async def test_created_and_derived_topics_are_dropped_others_kept(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kafka, "_created", set())  # this test's topics only, not the run's
    prefix = unique_name("drop") + "."
    ours = [prefix + "orders", prefix + "inventory.commands"]
    await create_topics(kafka_bootstrap, ours, partitions=1)
    other_prefix = unique_name("auto") + "."  # a prefix a service created topics under
    derived = [prefix + "orders.dlq", other_prefix + "orders", other_prefix + "orders.dlq"]
    foreign = f"keep-{uuid.uuid4().hex[:12]}"  # not a name of this run
    await made_outside_the_run(kafka_bootstrap, [*derived, foreign])
    try:
        assert await drop_created_topics(kafka_bootstrap) == 5
        names = await admin_call(kafka_bootstrap, "list_topics")
        assert isinstance(names, list)
        assert set(names).isdisjoint([*ours, *derived])
        assert foreign in names
        assert kafka._created == set()
    finally:
        await admin_call(kafka_bootstrap, "delete_topics", [foreign])
