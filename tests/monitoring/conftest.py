import pytest

from .servers import LoopbackHTTP, LoopbackTCP


@pytest.fixture
def http_server():
    with LoopbackHTTP() as server:
        yield server


@pytest.fixture
def tcp_server():
    with LoopbackTCP() as server:
        yield server
