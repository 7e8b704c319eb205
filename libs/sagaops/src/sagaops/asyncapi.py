"""The AsyncAPI 3.0 document of the message contracts: every topic and its dead-letter topic,
every message with its headers, key and example, who sends and who receives it, and which replies
answer each command. Built from sagakit alone: the contract classes and their routes
(``sagakit.contracts``), the envelope's headers (``H``, ``REQUIRED_HEADERS``) and the consumer's
dead-letter headers (``DLQ``). Written out by ``saga-contracts`` (``sagaops.contracts_doc``).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import version
from typing import Any

from pydantic.json_schema import models_json_schema

from sagakit import errors
from sagakit.consumer import DLQ
from sagakit.contracts import ROUTES, Routes
from sagakit.contracts.base import Reply
from sagakit.contracts.routes import ORCHESTRATOR
from sagakit.messaging.envelope import REQUIRED_HEADERS, H
from sagakit.messaging.registry import Message
from sagakit.settings import Topics
from sagaops.schema_compat import Schema

KAFKA_BINDING = "0.5.0"
_TOPICS = Topics()

# What each envelope header means, and its shape (all Kafka headers are UTF-8 strings).
_UUID = {"type": "string", "format": "uuid"}
_TIME = {"type": "string", "format": "date-time"}
HEADER_SCHEMAS: dict[str, Schema] = {
    H.MESSAGE_ID: {**_UUID, "description": "Unique per message; readers deduplicate on it."},
    H.MESSAGE_TYPE: {
        "type": "string",
        "description": "Names the payload's contract; an unknown type is dead-lettered.",
    },
    H.SAGA_ID: {**_UUID, "description": "The saga this message belongs to."},
    H.ORDER_ID: {**_UUID, "description": "The order the saga is for."},
    H.STEP: {
        "type": "string",
        "description": "The workflow step a command is for (`reserve_inventory`, or "
        "`reserve_inventory:compensate` for its compensation); a reply repeats its command's.",
    },
    H.CAUSATION_ID: {**_UUID, "description": "The message-id of the message this one answers."},
    H.TIMESTAMP: {**_TIME, "description": "When the message was created (ISO 8601, UTC)."},
    H.SCHEMA_VERSION: {
        "type": "string",
        "pattern": "^[1-9][0-9]*$",
        "description": "The revision of the message type's contract the writer had "
        "(docs/contracts.md).",
    },
    H.TRACEPARENT: {
        "type": "string",
        "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
        "description": "W3C Trace Context: one trace per order across every service.",
    },
    H.DEADLINE: {
        **_TIME,
        "description": "When the orchestrator stops waiting for the answer: a participant whose "
        "effect cannot be undone (an email) does not act after it.",
    },
}

# Which headers each kind of writer always sets, beyond the ones every consumer requires
# (the orchestrator's SagaEngine for commands and events, Envelope.reply for replies).
HEADER_ROLES: dict[str, tuple[str, ...]] = {
    "IntakeHeaders": (),
    "CommandHeaders": (H.SAGA_ID, H.ORDER_ID, H.STEP, H.TRACEPARENT, H.DEADLINE),
    "ReplyHeaders": (H.SAGA_ID, H.ORDER_ID, H.STEP, H.CAUSATION_ID, H.TRACEPARENT),
    "EventHeaders": (H.SAGA_ID, H.ORDER_ID, H.TRACEPARENT),
}

DLQ_HEADER_SCHEMAS: dict[str, Schema] = {
    DLQ.ERROR_CODE: {"type": "string", "description": "Why: the error's stable code."},
    DLQ.REASON: {"type": "string", "description": "Why, for people (at most 4,000 characters)."},
    DLQ.ORIGINAL_TOPIC: {"type": "string", "description": "Where the record was read."},
    DLQ.ORIGINAL_PARTITION: {"type": "string", "pattern": "^[0-9]+$"},
    DLQ.ORIGINAL_OFFSET: {"type": "string", "pattern": "^[0-9]+$"},
    DLQ.CONSUMER_GROUP: {"type": "string", "description": "The service that gave up on it."},
    DLQ.FAILED_AT: {"type": "string", "description": "When, in Unix seconds."},
    DLQ.SAGA_STATUS: {"type": "string", "const": "COMPENSATION_FAILED"},
}
COMPENSATION_EXHAUSTED = "compensation_exhausted"


def poison_codes() -> list[str]:
    """Every ``dlq-error-code`` a consumer writes: the codes of the poison errors."""
    found, todo = set(), [errors.PoisonMessage]
    while todo:
        cls = todo.pop()
        found.add(cls.code)
        todo += cls.__subclasses__()
    return sorted(found)


# --- the document ---------------------------------------------------------------------------------


def channel_id(topic: str) -> str:
    """``inventory.commands.dlq`` -> ``inventoryCommandsDlq``."""
    first, *rest = topic.split(".")
    return first + "".join(part.capitalize() for part in rest)


def _ref(*path: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(path)}


def _consumer_of(topic: str, routes: Routes) -> str | None:
    if topic == _TOPICS.orders or topic in {r.reply_topic for r in routes.commands}:
        return ORCHESTRATOR
    for route in routes.commands:
        if topic == route.topic:
            return route.participant
    return None  # order.events: downstream systems, outside this document


class _Builder:
    def __init__(self, routes: Routes) -> None:
        self.routes = routes
        self.topics = self._ordered_topics()
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}
        self.schemas: dict[str, Any] = {}

    def _ordered_topics(self) -> dict[str, tuple[type[Message], ...]]:
        carried = self.routes.topics()
        order = [_TOPICS.orders]
        for participant in self.routes.participants():
            order += [_TOPICS.commands(participant), _TOPICS.replies(participant)]
        order.append(_TOPICS.order_events)
        return {topic: carried[topic] for topic in order if topic in carried}

    def build(self) -> dict[str, Any]:
        self._payload_schemas()
        self._header_schemas()
        for topic, messages in self.topics.items():
            self._channel(topic, messages)
        for route in self.routes.commands:
            self._command_operations(route.command, route.participant)
        self._intake_and_event_operations()
        for topic in self.topics:
            self._dead_letter_channel(topic)
        return {
            "asyncapi": "3.0.0",
            "info": {
                "title": "saga-shop messages",
                "version": version("sagakit"),
                "description": _INFO,
                "tags": [{"name": s, "description": d} for s, d in self._services().items()],
            },
            "defaultContentType": "application/json",
            "servers": {
                "local": {
                    "host": "127.0.0.1:9092",
                    "protocol": "kafka",
                    "description": "The broker of `make infra-up` (KAFKA_BOOTSTRAP_SERVERS). "
                    "A deployment may prefix every topic (KAFKA_TOPIC_PREFIX).",
                }
            },
            "channels": self.channels,
            "operations": self.operations,
            "components": {"schemas": self.schemas, "messages": self.messages},
        }

    def _services(self) -> dict[str, str]:
        services = {ORCHESTRATOR: "Runs the sagas: sends the commands, consumes the replies."}
        for participant in self.routes.participants():
            services[participant] = f"Participant: consumes {_TOPICS.commands(participant)}."
        return services

    # --- schemas ---

    def _payload_schemas(self) -> None:
        models = [m for messages in self.topics.values() for m in messages]
        _, top = models_json_schema(
            [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
        )
        self.schemas.update(top["$defs"])

    def _header_schemas(self) -> None:
        self.schemas["Headers"] = {
            "type": "object",
            "description": "The envelope: metadata travels in Kafka headers, the value is the "
            "JSON payload only. A record without the required ones is dead-lettered.",
            "properties": HEADER_SCHEMAS,
            "required": list(REQUIRED_HEADERS),
        }
        for name, also_required in HEADER_ROLES.items():
            role: Schema = {"type": "object", "allOf": [_ref("components", "schemas", "Headers")]}
            if also_required:
                role["allOf"].append({"type": "object", "required": list(also_required)})
            self.schemas[name] = role
        self.schemas["DeadLetterHeaders"] = {
            "type": "object",
            "description": "Added to the original record's headers, which are kept.",
            "properties": {
                **{k: v for k, v in DLQ_HEADER_SCHEMAS.items() if k != DLQ.SAGA_STATUS},
                DLQ.ERROR_CODE: {**DLQ_HEADER_SCHEMAS[DLQ.ERROR_CODE], "enum": poison_codes()},
            },
            "required": [k for k in DLQ_HEADER_SCHEMAS if k != DLQ.SAGA_STATUS],
        }

    # --- messages and channels ---

    def _kind(self, message: type[Message], topic: str) -> str:
        if topic == _TOPICS.orders:
            return "IntakeHeaders"
        if topic == _TOPICS.order_events:
            return "EventHeaders"
        return "ReplyHeaders" if issubclass(message, Reply) else "CommandHeaders"

    def _message(self, message: type[Message], topic: str) -> None:
        name = message.message_type
        headers_role = self._kind(message, topic)
        key = "the order id" if topic == _TOPICS.orders else "the saga id"
        entry: dict[str, Any] = {
            "name": name,
            "title": name,
            "summary": _summary(message),
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "allOf": [
                    _ref("components", "schemas", headers_role),
                    {
                        "type": "object",
                        "properties": {
                            H.MESSAGE_TYPE: {"const": name},
                            H.SCHEMA_VERSION: {"const": str(message.schema_version)},
                        },
                    },
                ],
            },
            "payload": _ref("components", "schemas", message.__name__),
            "bindings": {
                "kafka": {
                    "key": {"type": "string", "format": "uuid", "description": f"Always {key}."},
                    "bindingVersion": KAFKA_BINDING,
                }
            },
        }
        if headers_role == "ReplyHeaders":
            entry["correlationId"] = {
                "description": "The message-id of the command this answers.",
                "location": f"$message.header#/{H.CAUSATION_ID}",
            }
        if message.example is not None:
            entry["examples"] = [{"name": "example", "payload": message.example}]
        self.messages[name] = entry

    def _channel(self, topic: str, messages: Iterable[type[Message]]) -> None:
        for message in messages:
            self._message(message, topic)
        self.channels[channel_id(topic)] = {
            "address": topic,
            "description": self._channel_description(topic),
            "messages": {
                m.message_type: _ref("components", "messages", m.message_type) for m in messages
            },
        }

    def _channel_description(self, topic: str) -> str:
        if topic == _TOPICS.orders:
            return (
                "Orders from upstream systems, the same shape as `POST /orders`; the order id "
                "makes a resend idempotent. Key: the order id. Consumed by the orchestrator."
            )
        if topic == _TOPICS.order_events:
            return "How each saga ended, for downstream systems. Key: the saga id."
        consumer = _consumer_of(topic, self.routes)
        if consumer == ORCHESTRATOR:
            return "Replies to the orchestrator's commands. Key: the saga id."
        return f"The orchestrator's commands to {consumer}. Key: the saga id."

    def _dead_letter_channel(self, topic: str) -> None:
        dlq = Topics.dlq(topic)
        consumer = _consumer_of(topic, self.routes)
        messages = {"DeadLetter": _ref("components", "messages", "DeadLetter")}
        self.messages.setdefault("DeadLetter", _DEAD_LETTER)
        if consumer is None:
            text = (
                f"For downstream consumers of {topic} built on sagakit's consumer: nothing in "
                "this system writes here."
            )
        else:
            text = f"Records of {topic} that {consumer} could not process, parked for operators."
        is_commands = any(topic == r.topic for r in self.routes.commands)
        if is_commands:
            name = f"CompensationExhausted{_upper_first(channel_id(topic))}"
            self.messages[name] = self._compensation_alert(name, topic)
            messages[name] = _ref("components", "messages", name)
            text += " The orchestrator also parks here a compensation out of attempts."
        self.channels[channel_id(dlq)] = {
            "address": dlq,
            "description": text,
            "messages": messages,
        }
        if consumer is not None:
            self.operations[f"deadLetter{_upper_first(channel_id(topic))}"] = {
                "action": "send",
                "channel": _ref("channels", channel_id(dlq)),
                "summary": f"{consumer} parks what it cannot process from {topic}.",
                "tags": [{"name": consumer}],
                "messages": [_ref("channels", channel_id(dlq), "messages", "DeadLetter")],
            }
        if is_commands:
            self.operations[f"alert{_upper_first(channel_id(dlq))}"] = {
                "action": "send",
                "channel": _ref("channels", channel_id(dlq)),
                "summary": "The orchestrator parks a compensation it gave up on "
                "(saga COMPENSATION_FAILED, order NEEDS_ATTENTION).",
                "tags": [{"name": ORCHESTRATOR}],
                "messages": [_ref("channels", channel_id(dlq), "messages", name)],
            }

    def _compensation_alert(self, name: str, topic: str) -> dict[str, Any]:
        commands = self.topics[topic]
        alert_headers = {
            k: v
            for k, v in DLQ_HEADER_SCHEMAS.items()
            if k in (DLQ.REASON, DLQ.ORIGINAL_TOPIC, DLQ.SAGA_STATUS)
        }
        return {
            "name": name,
            "title": f"Compensation out of attempts ({topic})",
            "summary": "The compensation command the orchestrator could not get applied, "
            "with why; an operator retries the saga through the admin API.",
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "allOf": [
                    _ref("components", "schemas", "CommandHeaders"),
                    {
                        "type": "object",
                        "properties": {
                            DLQ.ERROR_CODE: {"type": "string", "const": COMPENSATION_EXHAUSTED},
                            **alert_headers,
                        },
                        "required": [DLQ.ERROR_CODE, *alert_headers],
                    },
                ],
            },
            "payload": {
                "oneOf": [_ref("components", "schemas", m.__name__) for m in commands],
            },
        }

    # --- operations ---

    def _command_operations(self, command: type[Message], participant: str) -> None:
        route = self.routes.for_command(command.message_type)
        commands, replies = channel_id(route.topic), channel_id(route.reply_topic)
        reply = {
            "channel": _ref("channels", replies),
            "messages": [
                _ref("channels", replies, "messages", r.message_type) for r in route.replies
            ],
        }
        message = [_ref("channels", commands, "messages", command.message_type)]
        self.operations[f"send{command.message_type}"] = {
            "action": "send",
            "channel": _ref("channels", commands),
            "summary": _summary(command),
            "tags": [{"name": ORCHESTRATOR}],
            "messages": message,
            "reply": reply,
        }
        self.operations[f"receive{command.message_type}"] = {
            "action": "receive",
            "channel": _ref("channels", commands),
            "summary": f"{participant} carries out {command.message_type} and answers.",
            "tags": [{"name": participant}],
            "messages": message,
            "reply": reply,
            "bindings": _group(participant),
        }

    def _intake_and_event_operations(self) -> None:
        orders, events = channel_id(_TOPICS.orders), channel_id(_TOPICS.order_events)
        for message in self.routes.intake_messages:
            self.operations[f"receive{message.message_type}"] = {
                "action": "receive",
                "channel": _ref("channels", orders),
                "summary": "The orchestrator places the order and starts its saga.",
                "tags": [{"name": ORCHESTRATOR}],
                "messages": [_ref("channels", orders, "messages", message.message_type)],
                "bindings": _group(ORCHESTRATOR),
            }
        if self.routes.event_messages:
            self.operations["sendOrderEvents"] = {
                "action": "send",
                "channel": _ref("channels", events),
                "summary": "When a saga ends, the orchestrator says how.",
                "tags": [{"name": ORCHESTRATOR}],
                "messages": [
                    _ref("channels", events, "messages", m.message_type)
                    for m in self.routes.event_messages
                ],
            }


def _group(service: str) -> dict[str, Any]:
    return {
        "kafka": {
            "groupId": {
                "type": "string",
                "enum": [service],
                "description": "Every replica of the service shares it (KAFKA_TOPIC_PREFIX "
                "is prepended, like to topics).",
            },
            "bindingVersion": KAFKA_BINDING,
        }
    }


def _summary(message: type[Message]) -> str:
    doc = message.__dict__.get("__doc__") or ""
    first = doc.strip().split("\n\n")[0]
    return " ".join(first.replace("``", "`").split()) or message.message_type


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


_INFO = """\
Every topic, message, header and key of saga-shop. Generated by `make contracts` from
libs/sagakit (the contract classes and their routes, the envelope, the consumer): do not edit.

- The record key is the saga id (the order id on `orders`), so one saga's messages stay in order.
- Metadata is in headers (`Headers`), the value is the JSON payload only.
- A record that cannot be read goes to `<topic>.dlq` with the reason in `dlq-*` headers.
- Readers ignore fields they do not know; a message type only gains optional fields. The rule
  and its check: docs/contracts.md.
"""

_DEAD_LETTER: dict[str, Any] = {
    "name": "DeadLetter",
    "title": "Dead-lettered record",
    "summary": "A record its consumer could not process (poison, or a handler that kept "
    "failing), with the original key, value and headers.",
    "contentType": "application/octet-stream",
    "headers": {
        "type": "object",
        "allOf": [_ref("components", "schemas", "DeadLetterHeaders")],
    },
    "payload": {
        "description": "The original record's value, byte for byte (often not valid JSON: "
        "that may be why it is here)."
    },
}


def asyncapi_document(routes: Routes = ROUTES) -> dict[str, Any]:
    return _Builder(routes).build()
