"""FAKE WinRM server for tests — no Windows host exists here.

A small WS-Management endpoint on loopback HTTP with basic auth that speaks the subset pywinrm
uses: Create (shell), Command, Receive, Signal, Delete. It is NOT Windows:
- `cmd [/v:on] /c <line>` and other plain commands run as `sh -c <line>` in a local subprocess
  (with the shell's Environment variables, as WinRM gives them), so the real pywinrm client and
  our executor are exercised end to end with real output and exit codes;
- `powershell -EncodedCommand <b64>` is decoded and recorded in `self.scripts` (there is no
  PowerShell here); it "succeeds" with empty output unless the script contains `exit <n>`.
Tests assert on what arrived (the exact script, quoting included).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.etree import ElementTree as ET

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
}
DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"


def _envelope(message_id: str, body: str) -> bytes:
    return (
        f'<s:Envelope xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" xmlns:w="{NS["w"]}" xmlns:rsp="{NS["rsp"]}">'
        f"<s:Header><a:RelatesTo>{message_id}</a:RelatesTo><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


class FakeWinRMServer:
    def __init__(self, *, username: str, password: str):
        self.auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.shells: dict[str, dict] = {}
        self.scripts: list[str] = []
        self.commands: list[tuple[str, str]] = []
        self.environments: list[dict[str, str]] = []  # the shell's Environment, per command
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                if self.headers.get("Authorization") != server.auth:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="fake"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                reply = server.handle(ET.fromstring(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]

    def start(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()

    def handle(self, root) -> bytes:
        action = root.find(".//a:Action", NS).text
        message_id = root.find(".//a:MessageID", NS).text
        selector = root.find(".//w:SelectorSet/w:Selector", NS)
        shell_id = selector.text if selector is not None else None
        verb = action.rsplit("/", 1)[1]
        if verb == "Create":
            shell_id = str(uuid.uuid4()).upper()
            variables = root.findall(".//rsp:Environment/rsp:Variable", NS)
            self.shells[shell_id] = {"env": {v.get("Name"): v.text or "" for v in variables}}
            return _envelope(message_id, f'<x:ResourceCreated xmlns:x="{NS["a"]}"><a:ReferenceParameters><w:SelectorSet>'
                             f'<w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>')
        if verb == "Command":
            command = root.find(".//rsp:Command", NS).text or ""
            args = (root.find(".//rsp:Arguments", NS).text if root.find(".//rsp:Arguments", NS) is not None else "") or ""
            command_id = str(uuid.uuid4()).upper()
            self.shells[shell_id][command_id] = self.execute(command, args, self.shells[shell_id]["env"])
            return _envelope(message_id, f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>")
        if verb == "Receive":
            command_id = root.find(".//rsp:DesiredStream", NS).get("CommandId")
            out, err, code = self.shells[shell_id][command_id]
            streams = "".join(
                f'<rsp:Stream Name="{name}" CommandId="{command_id}">{base64.b64encode(data).decode()}</rsp:Stream>'
                for name, data in (("stdout", out), ("stderr", err)) if data
            )
            return _envelope(message_id, f'<rsp:ReceiveResponse>{streams}<rsp:CommandState CommandId="{command_id}" State="{DONE}">'
                             f"<rsp:ExitCode>{code}</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>")
        if verb == "Signal":
            return _envelope(message_id, "<rsp:SignalResponse/>")
        if verb == "Delete":
            self.shells.pop(shell_id, None)
            return _envelope(message_id, "")
        raise ValueError(f"fake WinRM server: unsupported action {action}")

    def execute(self, command: str, args: str, env: dict[str, str]) -> tuple[bytes, bytes, int]:
        self.commands.append((command, args))
        self.environments.append(env)
        if command.lower() == "powershell":
            encoded = args.split("-EncodedCommand", 1)[1].strip().split()[0]
            script = base64.b64decode(encoded).decode("utf-16-le")
            self.scripts.append(script)
            match = re.search(r"\bexit (\d+)\s*$", script)
            return b"", b"", int(match.group(1)) if match else 0
        switches = re.match(r"((?:/[a-z]:?\w* )*?)/c ", args, re.I) if command.lower() == "cmd" else None
        line = args[switches.end():] if switches else f"{command} {args}".strip()
        done = subprocess.run(["sh", "-c", line], capture_output=True, timeout=30, env={**os.environ, **env})
        return done.stdout, done.stderr, done.returncode
