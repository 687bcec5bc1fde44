"""Choices of the targets app: credential kinds, protocols, run and step states."""

from django.db import models


class CredentialKind(models.TextChoices):
    WINRM_NTLM = "winrm_ntlm", "WinRM NTLM"
    WINRM_BASIC = "winrm_basic", "WinRM basic"
    WINRM_KERBEROS = "winrm_kerberos", "WinRM Kerberos"
    SSH_PASSWORD = "ssh_password", "SSH password"
    SSH_KEY = "ssh_key", "SSH private key"
    API_TOKEN = "api_token", "API token"


WINRM_KINDS = frozenset({CredentialKind.WINRM_NTLM, CredentialKind.WINRM_BASIC, CredentialKind.WINRM_KERBEROS})
SSH_KINDS = frozenset({CredentialKind.SSH_PASSWORD, CredentialKind.SSH_KEY})


class TargetOS(models.TextChoices):
    LINUX = "linux", "Linux"
    WINDOWS = "windows", "Windows"


class Protocol(models.TextChoices):
    SSH = "ssh", "SSH"
    WINRM = "winrm", "WinRM"


class WinRMScheme(models.TextChoices):
    HTTP = "http", "HTTP"
    HTTPS = "https", "HTTPS"


class ConnectionResult(models.TextChoices):
    UNKNOWN = "", "Never tested"
    OK = "ok", "OK"
    FAILED = "failed", "Failed"


class StepType(models.TextChoices):
    WINRM_EXEC = "winrm.exec", "WinRM: run a command"
    WINRM_COPY = "winrm.copy", "WinRM: copy a file"
    SSH_EXEC = "ssh.exec", "SSH: run a command"
    SSH_COPY = "ssh.copy", "SSH: copy a file"
    HTTP_REQUEST = "http.request", "HTTP request"


class Shell(models.TextChoices):
    POWERSHELL = "powershell", "PowerShell"
    CMD = "cmd", "cmd.exe"
    SH = "sh", "POSIX sh"
    BASH = "bash", "bash"


class OnFailure(models.TextChoices):
    STOP_TARGET = "stop_target", "Stop this target"
    CONTINUE = "continue", "Continue with the next step"


class NotifyOn(models.TextChoices):
    NEVER = "never", "Never"
    FAILURE = "failure", "On failure"
    SUCCESS = "success", "On success"
    ALWAYS = "always", "Always"


class OverlapPolicy(models.TextChoices):
    SKIP = "skip", "Skip the new run"
    QUEUE = "queue", "Queue it after the running one"
    PARALLEL = "parallel", "Run in parallel"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Timed out"


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
FINAL_RUN_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT)


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    TIMED_OUT = "timed_out", "Timed out"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"
    CHECKED = "checked", "Rendered (check mode)"


FINAL_STEP_STATUSES = (
    StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.TIMED_OUT, StepStatus.SKIPPED, StepStatus.CANCELLED, StepStatus.CHECKED,
)


class Trigger(models.TextChoices):
    USER = "user", "User"
    SCHEDULE = "schedule", "Schedule"
    API = "api", "API"
    DEPLOYMENT = "deployment", "Deployment"
    ALERT_RULE = "alert_rule", "Alert rule"
    RETRY = "retry", "Retry of failed targets"
    COMMAND = "command", "Management command"


class Stream(models.TextChoices):
    STDOUT = "stdout", "stdout"
    STDERR = "stderr", "stderr"
