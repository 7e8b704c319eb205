"""The settings for managed infrastructure turn into the clients' options as documented: Kafka
SASL/TLS for every aiokafka client, PostgreSQL sslmode for asyncpg and SQLAlchemy."""

import ssl
from pathlib import Path

import pytest

from sagakit.db.tls import PostgresTls
from sagakit.messaging import kafka_clients
from sagakit.messaging.kafka_clients import (
    KafkaSecurity,
    kafka_admin,
    kafka_consumer,
    kafka_producer,
)
from sagakit.runtime import build_service
from sagakit.settings import DatabaseTlsSettings, KafkaSettings, ServiceSettings
from sagakit.testing.messages import registry
from sagakit.testing.tls import Certificates, make_certificates

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("pki"), "client")


def test_sasl_ssl_with_a_ca_and_a_client_certificate(certs: Certificates, monkeypatch) -> None:
    for name, value in {
        "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "KAFKA_SASL_MECHANISM": "scram-sha-256",
        "KAFKA_SASL_USERNAME": " shop ",
        "KAFKA_SASL_PASSWORD": "kafka-SECRET",
        "KAFKA_SSL_CA_FILE": str(certs.ca_file),
        "KAFKA_SSL_CERT_FILE": str(certs.cert_file),
        "KAFKA_SSL_KEY_FILE": str(certs.key_file),
    }.items():
        monkeypatch.setenv(name, value)
    security = KafkaSettings().kafka_security
    options = security.client_options()
    context = options.pop("ssl_context")
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "shop",
        "sasl_plain_password": "kafka-SECRET",
    }
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert "kafka-SECRET" not in repr(security) + security.describe()
    assert security.describe() == "SASL_SSL (SCRAM-SHA-256 as 'shop')"


def test_plaintext_is_the_default_and_adds_nothing(monkeypatch) -> None:
    for name in ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SSL_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert KafkaSettings().kafka_security.client_options() == {"security_protocol": "PLAINTEXT"}
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "")  # as `.env.example` leaves it
    assert KafkaSettings().kafka_security == KafkaSecurity()


def test_every_client_of_the_factory_and_of_a_service_gets_the_security(monkeypatch) -> None:
    made: list[dict[str, object]] = []

    def record(*_topics: str, **options: object) -> dict[str, object]:
        made.append(options)
        return options

    for name in ("AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"):
        monkeypatch.setattr(kafka_clients, name, record)
    security = KafkaSecurity(protocol="SSL")
    kafka_producer("127.0.0.1:1", security, acks="all")
    kafka_consumer("t", bootstrap_servers="127.0.0.1:1", security=security, group_id="g")
    kafka_admin("127.0.0.1:1", security)
    assert len(made) == 3
    for options in made:
        assert options["bootstrap_servers"] == "127.0.0.1:1"
        assert options["security_protocol"] == "SSL"
        assert isinstance(options["ssl_context"], ssl.SSLContext)

    settings = ServiceSettings(KAFKA_SECURITY_PROTOCOL="SSL")  # type: ignore[call-arg]
    service = build_service(settings, registry=registry, topics=["t"])
    assert service.producer._security == settings.kafka_security
    assert service.consumer._security == settings.kafka_security


@pytest.mark.parametrize(
    ("mode", "with_ca", "verify", "hostname"),
    [
        ("require", False, ssl.CERT_NONE, False),
        ("require", True, ssl.CERT_REQUIRED, False),  # as libpq with a root certificate
        ("verify-ca", True, ssl.CERT_REQUIRED, False),
        ("verify-full", True, ssl.CERT_REQUIRED, True),
        ("verify-full", False, ssl.CERT_REQUIRED, True),  # the system's CAs
    ],
)
def test_postgres_modes_that_encrypt_build_a_context(
    certs: Certificates, mode, with_ca, verify, hostname
) -> None:
    tls = PostgresTls(mode=mode, ca_file=str(certs.ca_file) if with_ca else None)
    context = tls.connect_args()["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == verify
    assert context.check_hostname == hostname


def test_postgres_modes_without_verification_are_passed_as_asyncpg_takes_them(monkeypatch) -> None:
    assert PostgresTls(mode="prefer").connect_args() == {"ssl": "prefer"}
    monkeypatch.setenv("DB_SSLMODE", " Disable ")
    assert DatabaseTlsSettings().database_tls.connect_args() == {"ssl": "disable"}


def test_a_postgres_client_certificate_is_loaded(certs: Certificates, monkeypatch) -> None:
    monkeypatch.setenv("DB_SSLMODE", "verify-full")
    monkeypatch.setenv("DB_SSL_CA_FILE", str(certs.ca_file))
    monkeypatch.setenv("DB_SSL_CERT_FILE", str(certs.cert_file))
    monkeypatch.setenv("DB_SSL_KEY_FILE", str(certs.key_file))
    tls = DatabaseTlsSettings().database_tls
    assert tls.cert_file == str(certs.cert_file)
    assert isinstance(tls.ssl_argument(), ssl.SSLContext)
    monkeypatch.setenv("DB_SSL_KEY_FILE", str(Path(certs.ca_file).with_name("ca.key")))
    with pytest.raises(ValueError, match="DB_SSL_CERT_FILE: cannot be loaded"):
        DatabaseTlsSettings()  # a key that does not match the certificate


def test_no_postgres_sslmode_means_no_tls_unless_the_url_or_pgsslmode_asks(monkeypatch) -> None:
    # Not asyncpg's own default (prefer): the local server offers TLS, and every connection of
    # the services, the tests and the benchmark would be encrypted without anyone asking.
    monkeypatch.delenv("PGSSLMODE", raising=False)
    monkeypatch.delenv("DB_SSLMODE", raising=False)
    url = "postgresql+asyncpg://u:p@127.0.0.1:5432/db"
    assert PostgresTls().connect_args() == {"ssl": "disable"}
    assert PostgresTls().connect_args(url) == {"ssl": "disable"}
    assert DatabaseTlsSettings(_env_file=None).database_tls.connect_args(url) == {"ssl": "disable"}
    assert PostgresTls().connect_args(url + "?ssl=require") == {}  # the URL decides
    assert PostgresTls().connect_args(url + "?sslmode=verify-full") == {}
    monkeypatch.setenv("PGSSLMODE", "require")
    assert PostgresTls().connect_args(url) == {}  # libpq's variable decides (asyncpg reads it)
