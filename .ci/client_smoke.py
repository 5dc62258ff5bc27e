"""A user's first minutes with a Python client generated from wagate's OpenAPI document.

Usage: python client_smoke.py WAGATE_BINARY CLIENT_DIR

Starts `WAGATE_BINARY serve` on the simulated network (a temporary data dir, a known admin
key), then, through the generated client in CLIENT_DIR (package `wagate_client`) only: creates
a sim session, connects it, links it by scanning its QR code, sends a text to a virtual
contact and reads the message back, typed, until the contact has read it.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time

binary, client_dir = sys.argv[1], sys.argv[2]
sys.path.insert(0, client_dir)

from wagate_client import AuthenticatedClient  # noqa: E402
from wagate_client.api.messages import messages_get, messages_send  # noqa: E402
from wagate_client.api.operations import server_healthz  # noqa: E402
from wagate_client.api.sessions import sessions_connect, sessions_create, sessions_get, sessions_qr  # noqa: E402
from wagate_client.api.sim import sim_scan  # noqa: E402
from wagate_client.models import (  # noqa: E402
    ConnectorKind,
    ConnectRequest,
    CreateSession,
    Direction,
    LinkRequest,
    Message,
    MessageKind,
    MessageStatus,
    QrCode,
    SendKind,
    SendRequest,
    Session,
    SessionStatus,
    SimLinked,
    TextContent,
)

KEY = "smoke-test-admin-key"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(what, probe, seconds=20.0):
    """Calls `probe` until it returns something truthy; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.05)


def expect(kind, answer):
    """The typed answer, or a failure that shows what came instead."""
    assert isinstance(answer, kind), f"expected {kind.__name__}, got {answer!r}"
    return answer


def main():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        env = dict(
            os.environ,
            WAGATE_DATA_DIR=data_dir,
            WAGATE_LISTEN=f"127.0.0.1:{port}",
            WAGATE_ADMIN_KEY=KEY,
            WAGATE_CONNECTORS__SIM__ENABLED="true",
            WAGATE_CONNECTORS__SIM__DELIVERY_DELAY_MS="50",
            WAGATE_CONNECTORS__SIM__READ_DELAY_MS="100",
        )
        server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL)
        try:
            run(base)
        finally:
            server.terminate()
            server.wait(timeout=30)


def run(base):
    client = AuthenticatedClient(base_url=base, token=KEY, raise_on_unexpected_status=True)

    def healthy():
        try:
            return server_healthz.sync(client=client) is not None
        except Exception:  # not listening yet
            return False

    eventually("the server to answer", healthy)

    session = expect(Session, sessions_create.sync(client=client, body=CreateSession(connector=ConnectorKind.SIM, id="smoke")))
    assert session.status == SessionStatus.CREATED, session.status
    expect(Session, sessions_connect.sync("smoke", client=client, body=ConnectRequest()))

    qr = eventually("a QR code", lambda: _qr(client))
    linked = expect(SimLinked, sim_scan.sync(client=client, body=LinkRequest(code=qr.code, phone="15550001111")))
    assert linked.session_id == "smoke", linked

    eventually(
        "the session to connect",
        lambda: expect(Session, sessions_get.sync("smoke", client=client)).status == SessionStatus.CONNECTED,
    )

    body = SendRequest(to="15557770001", type_=SendKind.TEXT, text=TextContent(body="hello from the generated client"))
    sent = expect(Message, messages_send.sync("smoke", client=client, body=body))
    assert sent.direction == Direction.OUT, sent.direction

    def read():
        message = expect(Message, messages_get.sync(sent.id, client=client))
        return message if message.status == MessageStatus.READ else None

    message = eventually("the contact to read the message", read)
    assert message.type_ == MessageKind.TEXT, message.type_
    assert isinstance(message.text, TextContent), message.text
    assert message.text.body == "hello from the generated client", message.text.body
    assert message.to == "15557770001@s.whatsapp.net", message.to
    print(f"client smoke test: message {message.id} is {message.status.value}: {message.text.body!r}")


def _qr(client):
    answer = sessions_qr.sync("smoke", client=client)
    return answer if isinstance(answer, QrCode) and answer.code else None


if __name__ == "__main__":
    main()
