from django.db import models


class OrgStatus(models.TextChoices):
    TRIAL = "trial", "Trial"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    OFFBOARDING = "offboarding", "Offboarding"
    DELETED = "deleted", "Deleted"
