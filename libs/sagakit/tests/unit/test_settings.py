"""The Kafka bootstrap list: one address or a cluster's, normalised once in the settings."""

import pytest
from pydantic import ValidationError

from sagakit.settings import ServiceSettings, bootstrap_addresses

pytestmark = pytest.mark.unit


def test_a_cluster_list_is_split_and_trimmed() -> None:
    assert bootstrap_addresses(" 127.0.0.1:9092, 127.0.0.1:9094 ,kafka-3:9092,") == [
        "127.0.0.1:9092",
        "127.0.0.1:9094",
        "kafka-3:9092",
    ]


@pytest.mark.parametrize("value", ["", " , ", "127.0.0.1", "127.0.0.1:9092,:9094", "host:port"])
def test_a_list_without_a_usable_address_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        bootstrap_addresses(value)


def test_services_take_the_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092, 127.0.0.1:9094")
    assert ServiceSettings().kafka_bootstrap_servers == "127.0.0.1:9092,127.0.0.1:9094"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1")
    with pytest.raises(ValidationError, match="not host:port"):
        ServiceSettings()
