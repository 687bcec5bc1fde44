"""Real mail peers on loopback for the ticket mail tests: a Dovecot IMAP server of our own (a
temporary directory, a passwd-file user, a Maildir) and an aiosmtpd SMTP server that captures
what the portal sends."""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import socket
import subprocess
import time
from pathlib import Path

from tests.peers import program


def free_port(start: int = 18700, stop: int = 18999) -> int:
    offset = os.getpid() % (stop - start)
    for port in [*range(start + offset, stop), *range(start, start + offset)]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}-{stop}")


CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login}
default_internal_user = {internal}
default_internal_group = {group}
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
mail_location = maildir:~/Maildir
mail_fsync = never
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


class Dovecot:
    """One Dovecot IMAP server with one user (`user` / `password`) on a free loopback port."""

    user = "support@a.test"
    password = "imap-secret"

    def __init__(self, directory: Path):
        self.binary = program("dovecot")
        self.dir = directory
        self.port = free_port()

    def start(self) -> Dovecot:
        d = self.dir
        for sub in ("run", "state", "home"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        if os.getuid() == 0:  # Dovecot refuses uid 0 for mail users: the mail belongs to nobody
            nobody = pwd.getpwnam("nobody")
            uid, gid, login, internal, group = nobody.pw_uid, nobody.pw_gid, "nobody", "root", "root"
            os.chown(d / "home", uid, gid)
        else:
            me = pwd.getpwuid(os.getuid())
            uid, gid, login, internal, group = me.pw_uid, me.pw_gid, me.pw_name, me.pw_name, me.pw_name
        (d / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        self.conf = d / "dovecot.conf"
        self.conf.write_text(CONF.format(d=d, port=self.port, uid=uid, gid=gid, login=login, internal=internal, group=group))
        # the master daemonizes: its output goes to the log file, not to pipes it would hold open
        subprocess.run(
            [self.binary, "-c", str(self.conf)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return self
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen: {(d / 'dovecot.log').read_text()[-2000:]}")

    def stop(self) -> None:
        subprocess.run(
            [self.binary, "-c", str(self.conf), "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20
        )

    def append(self, *raws: bytes) -> None:
        """Deliver mail into INBOX by IMAP APPEND (as an MTA's delivery agent would)."""
        client = imaplib.IMAP4("127.0.0.1", self.port)
        try:
            client.login(self.user, self.password)
            for raw in raws:
                typ, data = client.append("INBOX", None, None, raw)
                assert typ == "OK", data
        finally:
            client.logout()

    def unseen(self) -> int:
        client = imaplib.IMAP4("127.0.0.1", self.port)
        try:
            client.login(self.user, self.password)
            client.select("INBOX")
            return len(client.uid("SEARCH", "UNSEEN")[1][0].split())
        finally:
            client.logout()


class Capture:
    """aiosmtpd handler keeping every envelope an SMTP client delivered."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self):
        import email
        import email.policy

        return [email.message_from_bytes(e.original_content or e.content, policy=email.policy.default) for e in self.envelopes]
