"""Real local receivers for Apprise: an SMTP server (aiosmtpd) and an HTTP server for json://.

Tests send through Apprise to these on loopback and read what arrived, as a ministry's mail
server or a messenger bridge would receive it.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["subject"])

    def part(self, content_type: str) -> str | None:
        for part in self.message.walk():
            if part.get_content_type() == content_type and not part.get_filename():
                return part.get_content()
        return None

    @property
    def text(self) -> str:
        return self.part("text/plain") or ""

    @property
    def html(self) -> str:
        return self.part("text/html") or ""

    @property
    def attachments(self) -> dict[str, bytes]:
        return {p.get_filename(): p.get_payload(decode=True) for p in self.message.walk() if p.get_filename()}


class _Handler:
    def __init__(self, box: SmtpReceiver) -> None:
        self.box = box

    async def handle_DATA(self, _server, _session, envelope):  # noqa: N802 - aiosmtpd's name
        if self.box.refuse:
            return "451 4.3.0 mailbox temporarily unavailable (test)"
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.box.lock:
            self.box.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


@dataclass
class SmtpReceiver:
    """An SMTP server on 127.0.0.1; `refuse=True` makes it answer every message with a 451."""

    port: int = field(default_factory=free_port)
    refuse: bool = False
    password: str = "s3cret-smtp"
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> SmtpReceiver:
        def authenticate(_server, _session, _envelope, _mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.password.decode() == self.password
            return AuthResult(success=ok)

        self.controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port,
            authenticator=authenticate, auth_require_tls=False,  # loopback only: no TLS needed
        )
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    def url(self, to: str, *, user: str = "npm", password: str | None = None, sender: str = "npm@ombudsman.kz") -> str:
        """An Apprise mailto:// URL delivering to `to` through this server (no TLS on loopback)."""
        password = password or self.password
        return (
            f"mailto://{user}:{password}@127.0.0.1:{self.port}?smtp=127.0.0.1&mode=insecure"
            f"&from={sender}&to={to}&user={user}&pass={password}"
        )

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.mails if address in m.recipients]


@dataclass
class Post:
    path: str
    body: dict


class JsonReceiver:
    """An HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it (Apprise json://)."""

    def __init__(self, status: int = 200) -> None:
        self.posts: list[Post] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                receiver.posts.append(Post(self.path, json.loads(raw.decode("utf-8"))))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def __enter__(self) -> JsonReceiver:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def at(self, path: str) -> list[Post]:
        return [p for p in self.posts if p.path.split("?")[0] == "/" + path.lstrip("/")]
