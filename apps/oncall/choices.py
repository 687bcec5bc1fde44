"""Choices of the on-call app: layer kinds and rotation frequencies."""

from django.db import models


class LayerKind(models.TextChoices):
    ROTATION = "rotation", "Rotation (members take turns)"
    CALENDAR = "calendar", "Calendar (imported shifts)"


class Frequency(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    CUSTOM = "custom", "Custom length (hours)"


class Source(models.TextChoices):
    """Where a slice of the final schedule comes from."""

    LAYER = "layer", "Layer"
    OVERRIDE = "override", "Override"
    GAP = "gap", "Nobody on call"
