"""What ingestion reads besides the alerts themselves, kept per process behind a version token.

A batch needs the tenant's live ingestion tokens, silences, maintenance windows, inhibition
rules, escalation policies and subscribers of external alerts — six small queries that change a
few times a day but would run on every request. `tenant_config()` keeps one read-only snapshot
per tenant in core's `ProcessMemo` (apps/core/cache.py), one scope per tenant: any save or delete
of those rows (services, the admin, cascades — `post_save`/`post_delete` receivers below) bumps
the tenant's version token, so the next request of every process reloads. Time does not
invalidate beyond SNAPSHOT_MAX_AGE (which bounds a bump lost while Redis was unreachable; then
nothing is trusted and every request loads from PostgreSQL): snapshots keep silences and windows
that have not ended yet and the caller decides what is active at its own `now`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from apps.core.cache import READ, ProcessMemo, count_and_token
from apps.maintenance.models import MaintenanceWindow

from .choices import SEVERITY_RANK, AlertType, Severity
from .models import AlertSubscription, EscalationPolicy, IngestToken, InhibitRule, Silence
from .notify import first_matching_policy, subscriber_union

SNAPSHOT_MAX_AGE = 30.0  # seconds; only bounds a version bump lost while Redis was unreachable
RATE_WINDOW_TTL = 90


@dataclass
class TenantConfig:
    """One tenant's ingestion configuration as loaded at `loaded_at` (read-only; shared by requests)."""

    tenant_id: int
    version: str | None
    loaded_at: float
    tokens: dict[str, tuple[int, str]]  # prefix -> (token id, SHA-256 of the raw token)
    silences: list[Silence]
    windows: list[MaintenanceWindow]
    inhibit_rules: list[InhibitRule]
    policies: list[EscalationPolicy]
    subscriptions: list[tuple[int, str, list]]  # (user id, min severity, channels) for external alerts
    _policy_by_severity: dict = field(default_factory=dict)
    _memo: dict = field(default_factory=dict)

    def active_silences(self, now: datetime) -> list[Silence]:
        return [s for s in self.silences if s.starts_at <= now < s.ends_at]

    def active_windows(self, now: datetime) -> list[MaintenanceWindow]:
        return [w for w in self.windows if w.is_active(now)]

    def policy_for(self, severity: str) -> EscalationPolicy | None:
        """The first enabled policy by name for an external alert of this severity."""
        if severity not in self._policy_by_severity:
            self._policy_by_severity[severity] = first_matching_policy(self.policies, AlertType.EXTERNAL, severity)
        return self._policy_by_severity[severity]

    def memo(self, key: str, build, *args):
        """`build(*args)`, computed once per snapshot (it must depend on the snapshot only)."""
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = build(*args)
            return value

    def subscribers(self, severity: str) -> tuple[list[int], list[str]]:
        """As notify.subscribers() for external alerts: user ids and the union of their channels."""
        rank = SEVERITY_RANK[Severity(severity)]
        return subscriber_union((uid, chans) for uid, min_sev, chans in self.subscriptions if SEVERITY_RANK[Severity(min_sev)] <= rank)


_snapshots = ProcessMemo("alerts-ingest-config", ttl=SNAPSHOT_MAX_AGE)
_token_tenant: dict[str, int] = {}  # token prefix -> tenant id (which snapshot to look in)


def load_config(tenant_id: int, *, version: str | None) -> TenantConfig:
    now = timezone.now()
    return TenantConfig(
        tenant_id=tenant_id, version=version, loaded_at=time.monotonic(),
        tokens={p: (pk, h) for pk, p, h in IngestToken.objects.filter(tenant_id=tenant_id, revoked_at__isnull=True)
                .values_list("pk", "prefix", "token_hash")},
        silences=list(Silence.objects.filter(tenant_id=tenant_id, ends_at__gt=now)),
        windows=list(MaintenanceWindow.objects.filter(tenant_id=tenant_id, enabled=True)
                     .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))),
        inhibit_rules=list(InhibitRule.objects.filter(tenant_id=tenant_id, enabled=True)),
        policies=list(EscalationPolicy.objects.filter(tenant_id=tenant_id, enabled=True).order_by("name")),
        subscriptions=list(AlertSubscription.objects.filter(tenant_id=tenant_id, alert_type=AlertType.EXTERNAL, enabled=True)
                           .values_list("user_id", "min_severity", "channels")),
    )


def tenant_config(tenant_id: int, *, version=READ) -> TenantConfig:
    """The tenant's snapshot: the kept one while the tenant's version token (read now unless
    given; None: Redis unavailable, trust nothing) still holds, else fresh."""
    if version is READ:
        version = _snapshots.token(tenant_id)
    return _snapshots.get(tenant_id, lambda: load_config(tenant_id, version=version), scope=tenant_id, token=version)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_tenant(raw: str) -> int | None:
    """The tenant a raw `opa_<prefix>_<secret>` token claims (from this process's memory or the
    database), or None for an unknown prefix. Not yet proof: `token_valid()` checks the hash."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or not parts[1]:
        return None
    prefix = parts[1]
    tenant_id = _token_tenant.get(prefix)
    if tenant_id is None:
        tenant_id = IngestToken.objects.filter(prefix=prefix, revoked_at__isnull=True).values_list("tenant_id", flat=True).first()
        if tenant_id is None:
            return None
        _token_tenant[prefix] = tenant_id
    return tenant_id


def authenticate(raw: str) -> int | None:
    """The tenant of a raw ingestion token if its hash matches a live token of that tenant.

    A token's hash never changes, so any snapshot this process holds can prove it; only a
    revocation since then is left for the caller to catch with the current snapshot
    (`ingest.ingest_gate(authorize=...)`)."""
    tenant_id = token_tenant(raw)
    if tenant_id is None:
        return None
    cfg = _snapshots.kept(tenant_id, scope=tenant_id)
    if cfg is not None and token_valid(cfg, raw) is not None:
        return tenant_id
    if token_valid(tenant_config(tenant_id), raw) is not None:  # a snapshot older than the token, or none
        return tenant_id
    forget_token(raw)
    return None


def forget_token(raw: str) -> None:
    parts = raw.split("_", 2)
    if len(parts) == 3:
        _token_tenant.pop(parts[1], None)


def token_valid(cfg: TenantConfig, raw: str) -> int | None:
    """The token's id if `raw` is one of the tenant's live tokens (constant-time comparison)."""
    entry = cfg.tokens.get(raw.split("_", 2)[1])
    if entry is None or not hmac.compare_digest(entry[1], hash_token(raw)):
        return None
    return entry[0]


_last_used: dict[int, float] = {}


def touch_token(token_id: int) -> None:
    """Record `last_used_at` at most once a minute per token and process."""
    if time.monotonic() - _last_used.get(token_id, -1e9) < 60:
        return
    _last_used[token_id] = time.monotonic()
    now = timezone.now()
    IngestToken.objects.filter(pk=token_id).filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - timedelta(minutes=1))).update(last_used_at=now)


# -- the version token and the rate counter ----------------------------------------------------
def _rate_key(tenant_id: int, window: int) -> str:
    return f"alerts:ingest:{tenant_id}:{window}"


def bump_version(tenant_id: int) -> None:
    """Invalidate every process's snapshot of this tenant (now and again after commit)."""
    _snapshots.bump(tenant_id)


def rate_and_version(tenant_id: int, count_delta: int, now: datetime) -> tuple[int, str | None]:
    """Add `count_delta` to the tenant's alerts of this minute and read its config version token.
    Returns (alerts counted in this minute, token or None without Redis: then the counter
    counts this request only)."""
    return count_and_token(_rate_key(tenant_id, int(now.timestamp()) // 60), count_delta, RATE_WINDOW_TTL,
                           token_key=_snapshots.token_key(tenant_id))


# -- invalidation ------------------------------------------------------------------------------
def _changed(sender, instance, **kwargs) -> None:
    if instance.tenant_id:
        bump_version(instance.tenant_id)
    if isinstance(instance, IngestToken):
        _token_tenant.pop(instance.prefix, None)


for _model in (IngestToken, Silence, InhibitRule, EscalationPolicy, AlertSubscription, MaintenanceWindow):
    post_save.connect(_changed, sender=_model, dispatch_uid=f"alerts.ingest_config.{_model.__name__}.save")
    post_delete.connect(_changed, sender=_model, dispatch_uid=f"alerts.ingest_config.{_model.__name__}.delete")
