"""The audit reads each database with DB_SSLMODE as the services do: ``verify-full`` with the
local CA on the local server (which offers TLS, `make infra-up`) reads over TLS; a foreign CA
makes the audit unavailable, saying why."""

from typing import Any

import pytest

from sagakit.db.tls import PostgresTls
from sagakit.testing.infra import Infra
from sagakit.testing.tls import make_certificates
from sagaops.audit_sources import AuditTargets, AuditUnavailable, Snapshot, _read_db

pytestmark = pytest.mark.integration


async def test_the_audit_reads_over_verified_tls(infra: Infra, tmp_path) -> None:
    if infra.postgres_tls_dir is None:
        pytest.fail(f"the {infra.source} PostgreSQL offers no TLS")
    url = infra.database_url("sagatest")
    seen: list[bool] = []

    async def reader(conn: Any, snap: Snapshot) -> None:
        seen.append(await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))

    def targets(tls: PostgresTls) -> AuditTargets:
        return AuditTargets(
            orchestrator_url=url,
            inventory_url=url,
            payment_url=url,
            notification_url=url,
            database_tls=tls,
        )

    ca = str(infra.postgres_tls_dir / "ca.pem")
    snap = Snapshot(grace_s=0)
    await _read_db(targets(PostgresTls()), "sagatest", url, reader, snap)
    await _read_db(targets(PostgresTls("verify-full", ca)), "sagatest", url, reader, snap)
    assert seen == [False, True]
    foreign = make_certificates(tmp_path).ca_file
    with pytest.raises(AuditUnavailable, match=r"cannot read the sagatest database.*verify failed"):
        await _read_db(
            targets(PostgresTls("verify-full", str(foreign))), "sagatest", url, reader, snap
        )
