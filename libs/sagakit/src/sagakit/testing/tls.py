"""A throwaway certificate authority for tests of the TLS settings (``openssl`` on PATH)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certificates:
    """A CA, and a certificate signed by it for ``127.0.0.1`` and ``localhost`` (a server's or
    a client's), each key unencrypted; every file PEM."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_certificates(folder: Path, name: str = "server") -> Certificates:
    """Create (in ``folder``) a CA and a certificate it signed, valid for two days."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_file = folder / "ca.key", folder / "ca.pem"
    key_file, csr, cert_file = (
        folder / f"{name}.key",
        folder / f"{name}.csr",
        folder / f"{name}.pem",
    )
    ext = folder / f"{name}.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    if not ca_file.exists():
        _openssl(
            "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_file, "-days", "2",
            "-subj", "/CN=saga test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
    _openssl("req", *ec, "-keyout", key_file, "-out", csr, "-subj", "/CN=127.0.0.1")
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca_file, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert_file, "-days", "2", "-extfile", ext,
    )  # fmt: skip
    return Certificates(ca_file=ca_file, cert_file=cert_file, key_file=key_file)


def _openssl(*args: object) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)
