"""Every contract has exactly one route, and the routes are the process table of the SPEC."""

import uuid

import pytest

from sagakit.contracts import REGISTRY, ROUTES, Reply, Routes, SuccessReply
from sagakit.messaging.registry import Message

pytestmark = pytest.mark.unit


def test_every_registered_message_travels_on_exactly_one_topic() -> None:
    routed = list(ROUTES.routed_types())
    assert sorted(routed) == sorted(m.message_type for m in REGISTRY)
    assert len(routed) == len(set(routed)), "a message type is routed on two topics"


def test_commands_go_to_their_participant_and_replies_come_back_from_it() -> None:
    route = ROUTES.for_command("ReserveInventory")
    assert (route.topic, route.reply_topic) == ("inventory.commands", "inventory.replies")
    assert [r.message_type for r in route.replies] == [
        "InventoryReserved",
        "InventoryReservationFailed",
    ]
    assert ROUTES.participants() == ("inventory", "notification", "payment")
    assert all(issubclass(r, Reply) for route in ROUTES.commands for r in route.replies)


def test_the_topics_are_the_process_table() -> None:
    assert set(ROUTES.topics()) == {
        "orders",
        "order.events",
        *(f"{p}.{kind}" for p in ROUTES.participants() for kind in ("commands", "replies")),
    }


def test_a_message_is_routed_once() -> None:
    class Ping(Message):
        message_type = "Ping"
        order_id: uuid.UUID

    class Pong(SuccessReply):
        message_type = "Pong"

    routes = Routes()
    routes.command(Ping, participant="echo", replies=(Pong,))
    with pytest.raises(ValueError, match="already has a route"):
        routes.event(Ping)
    with pytest.raises(ValueError, match="at least one reply"):
        Routes().command(Ping, participant="echo", replies=())
    with pytest.raises(LookupError, match="Pong"):
        routes.for_command("Pong")
