"""TLS and basic auth against a real Prometheus (its --web.config.file): the source reaches it
with ca_file and a password from ${VAR}; a wrong password or an untrusted certificate is a
clear, non-retryable error (exit 2), and the password appears in no output or log."""
from __future__ import annotations

import datetime as dt
import ipaddress
import logging

import pytest

from promtest import PrometheusServer, write_config

pytestmark = pytest.mark.slow

# The Prometheus documentation's own example: the bcrypt hash of the password "test".
TEST_HASH = "$2b$12$hNf2lSsxfm0.i4a.1kVpSOVyBCfIB51VRjgBUyv6kdnyTlgWj81Ay"
WRONG = "wrong-secret-9f2c"


def self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    crt, pem = tmp_path / "server.crt", tmp_path / "server.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


@pytest.fixture
def secured(tmp_path, exporter):
    crt, pem = self_signed(tmp_path)
    web = (f"tls_server_config:\n  cert_file: {crt}\n  key_file: {pem}\n"
           f"basic_auth_users:\n  admin: '{TEST_HASH}'\n")
    server = PrometheusServer(tmp_path, [f"127.0.0.1:{exporter.port}"], web_config=web, ca_file=str(crt),
                              auth=("admin", "test")).start()
    yield server, crt
    server.close()


def write(tmp_path, url: str, ca: str | None) -> str:
    return str(write_config(tmp_path, url, "sum(increase(test_requests_total[1m]))",
                            shared='username = "admin"\npassword = "${PROM_PASSWORD}"\n'
                                   + (f'ca_file = "{ca}"' if ca else "")))


def test_tls_and_basic_auth(tmp_path, secured, monkeypatch, capsys, caplog):
    from prewarm.cli.main import main

    server, crt = secured
    cfg = write(tmp_path, server.url, str(crt))
    monkeypatch.setenv("PROM_PASSWORD", "test")
    main(["--config", cfg, "sync", "--json"])  # exit 0: reached, authenticated, answered
    assert '"error": null' in capsys.readouterr().out

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("PROM_PASSWORD", WRONG)
    with pytest.raises(SystemExit) as exc:
        main(["--config", cfg, "--log-level", "debug", "sync", "chat"])
    out = capsys.readouterr()
    assert exc.value.code == 2
    assert "endpoint chat" in out.err and "refused the credentials (401)" in out.err
    assert WRONG not in out.out + out.err + caplog.text

    monkeypatch.setenv("PROM_PASSWORD", "test")
    cfg = write(tmp_path, server.url, None)  # the self-signed certificate is not trusted
    with pytest.raises(SystemExit) as exc:
        main(["--config", cfg, "sync"])
    assert exc.value.code == 2 and "TLS certificate not trusted" in capsys.readouterr().err
