"""A real OpenSSH server on a loopback port with its own config and keys (tests and benchmarks).

No pytest here, so benchmarks use the same server as the tests."""

from __future__ import annotations

import os
import socket
import subprocess
import time

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SSHServer:
    def __init__(self, root):
        self.root = root
        self.port = free_port()
        self.user = os.environ.get("USER") or "root"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host_key")], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "client_key")], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret-pass", "-f", str(root / "client_key_pp")], check=True)
        (root / "authorized_keys").write_text((root / "client_key.pub").read_text() + (root / "client_key_pp.pub").read_text())
        os.chmod(root / "authorized_keys", 0o600)
        (root / "sshd_config").write_text(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {root}/host_key
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
MaxStartups 500:30:1000
MaxSessions 100
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel ERROR
""")
        os.makedirs("/run/sshd", exist_ok=True)
        self.proc = subprocess.Popen([SSHD, "-D", "-f", str(root / "sshd_config"), "-E", str(root / "sshd.log")])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("sshd did not start: " + (root / "sshd.log").read_text())

    @property
    def key(self) -> str:
        return (self.root / "client_key").read_text()

    @property
    def key_with_passphrase(self) -> str:
        return (self.root / "client_key_pp").read_text()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)
