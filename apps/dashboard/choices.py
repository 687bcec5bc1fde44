"""Choices of the dashboard app: KPIs, checkpoint periods and outcomes, health grades."""

from django.db import models


class Kpi(models.TextChoices):
    SLA_COMPLIANCE = "sla_compliance", "SLA compliance"
    JOB_SUCCESS = "job_success", "Job run success"
    AVAILABILITY = "availability", "Endpoint availability"


class KpiPeriod(models.TextChoices):
    DAY = "day", "Daily"
    WEEK = "week", "Weekly (ISO week)"
    MONTH = "month", "Monthly"


class CheckpointOutcome(models.TextChoices):
    MET = "met", "Met"
    MISSED = "missed", "Missed"
    NO_DATA = "no_data", "No data"


class HealthGrade(models.TextChoices):
    HEALTHY = "healthy", "Healthy"
    AT_RISK = "at_risk", "At risk"
    CRITICAL = "critical", "Critical"
