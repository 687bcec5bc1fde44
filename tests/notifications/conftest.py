from tests.notifications.peers import http_peer, smtp_peer  # noqa: F401
