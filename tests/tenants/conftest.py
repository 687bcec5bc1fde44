from tests.notifications.peers import smtp_peer  # noqa: F401  (a real SMTP server on loopback)
