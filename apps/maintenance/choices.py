"""Choices of the maintenance app."""

from django.db import models


class Recurrence(models.TextChoices):
    ONE_OFF = "one_off", "One-off"
    CRON = "cron", "Recurring (cron start + duration)"
    RRULE = "rrule", "Recurring (RFC 5545 RRULE + duration)"


class WindowScope(models.TextChoices):
    TENANT = "tenant", "Whole tenant"
    OBJECTS = "objects", "Specific objects and/or label matchers"


class WindowSource(models.TextChoices):
    MANUAL = "manual", "Created by hand"
    SCHEDULE = "schedule", "Created by a schedule"
    OPERATION = "operation", "Opened by a running operation"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped (another run holds the lock)"
