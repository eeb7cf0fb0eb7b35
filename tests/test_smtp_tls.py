"""Email over STARTTLS and over SSL, with a login, against real TLS SMTP servers on 127.0.0.1."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tomllib

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from listener.config import parse_config
from listener.notify import deliver
from listener.store import Store
from tests.smtpserver import Inbox, free_port

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def authenticator(server, session, envelope, mechanism, auth_data):
    # handled=False: the server answers a refusal with 535, as real servers do
    return AuthResult(success=auth_data.login == b"listener" and auth_data.password == b"s3cret", handled=False)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_email_over_tls_with_login(tmp_path, certificate, monkeypatch, now, security):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox, port = Inbox(), free_port()
    # aiosmtpd counts only STARTTLS sessions as TLS for auth_require_tls; with ssl_context the whole
    # connection is TLS from the first byte, so the flag is off there
    tls = ({"tls_context": context, "require_starttls": True, "auth_require_tls": True} if security == "starttls"
           else {"ssl_context": context, "auth_require_tls": False})
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_required=True,
                            **tls)
    controller.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the test certificate, as an admin would a private CA
    monkeypatch.setenv("SMTP_USER", "listener")
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    try:
        config = parse_config(tomllib.loads(f"""
[database]
path = "{tmp_path / 'm.db'}"
[email]
host = "127.0.0.1"
port = {port}
security = "{security}"
username_env = "SMTP_USER"
password_env = "SMTP_PASSWORD"
from = "listener@example.org"
to = ["pr@example.org"]
timeout = "2s"
"""), base_dir=tmp_path)
        with Store(config.database.path) as store:
            store.enqueue(message_id="<tls@test>", channel="email", kind="alert", recipients=["pr@example.org"],
                          subject="[listener] FIRING tls", body_text="body", body_html=None, payload=None, now=now)
            assert tuple(deliver(config, store, now)) == (1, 0), [n["last_error"] for n in store.notifications()]
            monkeypatch.setenv("SMTP_PASSWORD", "wrong")
            store.enqueue(message_id="<tls2@test>", channel="email", kind="alert", recipients=["pr@example.org"],
                          subject="[listener] FIRING tls 2", body_text="body", body_html=None, payload=None, now=now)
            assert tuple(deliver(config, store, now)) == (0, 1)  # a refused login stays queued, with the reason
            error = store.outbox_status("<tls2@test>")["last_error"]
            assert error.startswith(f"SMTP server 127.0.0.1:{port} refused the login of $SMTP_USER: (535"), error
            assert "s3cret" not in error and "wrong" not in error
    finally:
        controller.stop()
    assert [str(m["Subject"]) for m in inbox.messages] == ["[listener] FIRING tls"]
