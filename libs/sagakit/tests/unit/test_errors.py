import pytest

from sagakit import errors

pytestmark = pytest.mark.unit


def test_families_are_distinct_and_flagged() -> None:
    assert errors.DatabaseUnavailable().retriable
    assert errors.BrokerUnavailable().retriable
    assert not errors.BusinessError().retriable
    assert not errors.InvalidMessage().retriable
    assert not issubclass(errors.PoisonMessage, errors.InfrastructureError)
    assert not issubclass(errors.BusinessError, errors.PoisonMessage)


def test_codes_are_stable_and_unique() -> None:
    classes = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.SagaError)
    ]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
    assert errors.UnknownMessageType.code == "unknown_message_type"


def test_a_code_can_be_given_per_instance() -> None:
    err = errors.BusinessError("no stock", code="INSUFFICIENT_STOCK")
    assert (err.code, err.message) == ("INSUFFICIENT_STOCK", "no stock")


def test_a_value_asyncpg_cannot_encode_is_a_bug_not_an_outage() -> None:
    import asyncpg

    from sagakit.db.errors import is_connection_lost, is_retriable_db_error

    encode = asyncpg.exceptions.DataError("invalid input for query argument $3: ['lots']")
    assert not is_retriable_db_error(encode)
    assert not is_connection_lost(encode)
    assert is_retriable_db_error(asyncpg.exceptions.ConnectionDoesNotExistError("closed"))
    assert is_retriable_db_error(asyncpg.InterfaceError("the connection is closed"))
