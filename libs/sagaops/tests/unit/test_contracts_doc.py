"""The published contracts (docs/asyncapi.yaml, docs/schemas/) are what the code says, they
describe every topic the infrastructure creates, and they only ever change compatibly."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from sagakit.contracts import REGISTRY, ROUTES
from sagakit.messaging.envelope import H
from sagaops.asyncapi import HEADER_SCHEMAS, asyncapi_document
from sagaops.contracts_doc import (
    contract_of,
    generated_files,
    published_files,
    stale_files,
)
from sagaops.schema_compat import breaking_changes

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[4]
DOCS = ROOT / "docs"
TOPICS_TXT = ROOT / "scripts" / "infra" / "topics.txt"


def test_the_published_documents_are_current() -> None:
    stale = stale_files(generated_files(), published_files(DOCS))
    assert stale == [], f"run `make contracts`: {stale} differ from what the code generates"


def test_no_change_breaks_a_deployed_reader_or_writer() -> None:
    # Against the committed documents, so it fails before anyone regenerates them; writing a
    # deliberate break takes `make contracts ACCEPT_BREAKING=1`, which shows in review.
    published = contract_of(published_files(DOCS))
    problems = breaking_changes(published, contract_of(generated_files()))
    assert problems == [], "see docs/contracts.md:\n" + "\n".join(problems)


def test_every_topic_of_the_infrastructure_is_a_channel_and_back() -> None:
    lines = [line.split("#")[0].split() for line in TOPICS_TXT.read_text().splitlines()]
    created = {words[0] for words in lines if words}  # the name is the first word of a line
    channels = {c["address"] for c in asyncapi_document()["channels"].values()}
    assert channels == created


def test_every_registered_message_is_published_with_its_schema() -> None:
    document = asyncapi_document()
    assert set(document["components"]["messages"]) >= {m.message_type for m in REGISTRY}
    schema_files = {p for p in generated_files() if p.startswith("schemas/")}
    assert schema_files == {f"schemas/{m.message_type}.json" for m in REGISTRY}


def test_every_envelope_header_is_described() -> None:
    names = {value for key, value in vars(H).items() if key.isupper()}
    assert set(HEADER_SCHEMAS) == names


def test_commands_are_sent_by_the_orchestrator_and_answered_on_the_reply_topic() -> None:
    operations = asyncapi_document()["operations"]
    for route in ROUTES.commands:
        send = operations[f"send{route.command.message_type}"]
        receive = operations[f"receive{route.command.message_type}"]
        assert (send["action"], send["tags"]) == ("send", [{"name": "orchestrator"}])
        assert (receive["action"], receive["tags"]) == ("receive", [{"name": route.participant}])
        replies = [m["$ref"].rsplit("/", 1)[1] for m in send["reply"]["messages"]]
        assert replies == [r.message_type for r in route.replies]


def test_every_reference_resolves_and_operations_use_their_channels_messages() -> None:
    # The AsyncAPI CLI checks this too (make contracts); here it runs without npm.
    document = asyncapi_document()

    def resolve(ref: str) -> Any:
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for item in node for r in refs(item)]
        return []

    for ref in refs(document):
        resolve(ref)
    for name, operation in document["operations"].items():
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel + "/messages/"), name


def test_the_yaml_reads_back_as_the_document() -> None:
    assert yaml.safe_load(generated_files()["asyncapi.yaml"]) == asyncapi_document()
