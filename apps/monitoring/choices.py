"""Choices of the monitoring app."""

from django.db import models


class EndpointKind(models.TextChoices):
    HTTP = "http", "HTTP"
    HTTPS = "https", "HTTPS"
    TCP = "tcp", "TCP port"
    HEARTBEAT = "heartbeat", "Heartbeat (push URL)"


class EndpointStatus(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    UP = "up", "Up"
    DEGRADED = "degraded", "Degraded"
    DOWN = "down", "Down"


class ResultStatus(models.TextChoices):
    UP = "up", "Up"
    SLOW = "slow", "Slow (over expected response time)"
    WARNING = "warning", "Warning (e.g. certificate expiring)"
    DOWN = "down", "Down"
    STARTED = "started", "Started (heartbeat /start)"


class MatchKind(models.TextChoices):
    NONE = "", "No body match"
    KEYWORD = "keyword", "Body contains keyword"
    KEYWORD_ABSENT = "keyword_absent", "Body does not contain keyword"
    JSON_PATH = "json_path", "JSON path equals value"


class PingKind(models.TextChoices):
    SUCCESS = "success", "Success"
    FAIL = "fail", "Failure"
    START = "start", "Start"


class TrendKind(models.TextChoices):
    LATENCY_P95 = "latency_p95", "Latency p95 over budget for a window"
    TLS_EXPIRY = "tls_expiry", "TLS certificate expiring within N days"


class TrendState(models.TextChoices):
    UNKNOWN = "unknown", "Unknown (not enough data yet)"
    OK = "ok", "OK"
    BREACHED = "breached", "Breached"


class TrendSeverity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"
