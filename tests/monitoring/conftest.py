import pytest

from .servers import LoopbackHTTP, LoopbackHTTPS, LoopbackTCP


@pytest.fixture
def http_server():
    with LoopbackHTTP() as server:
        yield server


@pytest.fixture
def tcp_server():
    with LoopbackTCP() as server:
        yield server


@pytest.fixture
def https_server():
    """HTTPS on loopback with a self-signed certificate expiring in 3 days."""
    with LoopbackHTTPS() as server:
        yield server
