"""Real peers on loopback: an HTTP server (threads) whose behaviour a test switches, the same over
TLS with a short-lived self-signed certificate the test can replace, and TCP."""

from __future__ import annotations

import json
import socket
import ssl
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path


class Behaviour:
    """What the server answers, and what it saw: connections opened, requests per path, most
    requests in flight at once. Paths: /status/<code>, /slow/<ms>[/…], /hang (until `release` is set)."""

    def __init__(self):
        self.status = 200
        self.delay = 0.0
        self.body = b"all good"
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: dict[str, int] = {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        with self.server.behaviour.lock:
            self.server.behaviour.connections += 1

    def do_GET(self):
        b = self.server.behaviour
        with b.lock:
            b.requests[self.path] = b.requests.get(self.path, 0) + 1
            b.in_flight += 1
            b.max_in_flight = max(b.max_in_flight, b.in_flight)
        try:
            status, body = self._answer(b)
        finally:
            # out of flight before the answer is written: the client may start its next request
            # the moment it reads this one, before this thread would get the lock back
            with b.lock:
                b.in_flight -= 1
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, b) -> tuple[int, bytes]:
        body, status = b.body, b.status
        if self.path.startswith("/json"):
            body, status = json.dumps({"data": {"state": "green", "items": [{"ok": True}]}}).encode(), 200
        elif self.path.startswith("/status/"):
            status = int(self.path.split("/")[2])
        elif self.path.startswith("/slow/"):
            time.sleep(int(self.path.split("/")[2].split("?")[0]) / 1000)
        elif self.path == "/hang":
            b.release.wait(60)
        if b.delay:
            time.sleep(b.delay)
        return status, body


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # the default backlog of 5 drops SYNs under 100 concurrent checks


class LoopbackHTTP:
    def __init__(self):
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.behaviour = Behaviour()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def behaviour(self) -> Behaviour:
        return self.server.behaviour

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def self_signed_certificate(directory: Path, *, valid_for: timedelta, name: str = "cert") -> tuple[Path, Path, datetime]:
    """A self-signed certificate for 127.0.0.1 (cryptography) expiring `valid_for` from now:
    (cert path, key path, notAfter)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC).replace(microsecond=0)
    not_after = now + valid_for
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5)).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path, cert.not_valid_after_utc


class _TLSServer(_Server):
    """Wraps each accepted connection with the current context, so a test can swap the
    certificate between checks (a renewal) on the same port."""

    ssl_context: ssl.SSLContext

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.settimeout(5)
        return self.ssl_context.wrap_socket(sock, server_side=True), addr


class LoopbackHTTPS(LoopbackHTTP):
    """The loopback HTTP server over TLS with a self-signed certificate expiring `valid_for` from
    now; `use_certificate(valid_for)` replaces it (new connections get the new one)."""

    def __init__(self, valid_for: timedelta = timedelta(days=3)):
        self._dir = tempfile.TemporaryDirectory()
        self.server = _TLSServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.behaviour = Behaviour()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.serial = 0
        self.use_certificate(valid_for)

    def use_certificate(self, valid_for: timedelta) -> datetime:
        self.serial += 1
        cert, key, self.not_after = self_signed_certificate(Path(self._dir.name), valid_for=valid_for, name=f"cert{self.serial}")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.ssl_context = context
        return self.not_after

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self._dir.cleanup()


class LoopbackTCP:
    """A listening TCP socket that accepts and closes connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                conn.close()
            except OSError:
                continue

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
