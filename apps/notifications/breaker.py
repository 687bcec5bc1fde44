"""What stands between a claimed delivery and its channel's endpoint: the channel being disabled
(the delivery is suppressed), and a circuit breaker per channel.

Breaker: NOTIFICATIONS_BREAKER_FAILURES failed sends in a row open it for
NOTIFICATIONS_BREAKER_COOLDOWN_SECONDS (`ChannelConfig.circuit_open_until`); while open, the
channel's deliveries are deferred to the end of the cool-down (pending, their attempt not
counted: never lost). After it, one worker wins the half-open probe (a conditional update) and
sends one delivery; success closes the breaker and releases the deferred rows at once, failure
opens it for another cool-down. Deliveries without a channel (plain e-mail) have no breaker.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from .choices import DeliveryStatus, SuppressReason
from .models import ChannelConfig, Delivery


@dataclass
class Gate:
    send: list = field(default_factory=list)
    suppressed: list = field(default_factory=list)
    deferred: list = field(default_factory=list)  # (row, until, why)
    probes: set[int] = field(default_factory=set)  # channel ids sending their half-open probe


def _cooldown() -> timedelta:
    return timedelta(seconds=settings.NOTIFICATIONS_BREAKER_COOLDOWN_SECONDS)


def open_reason(channel: ChannelConfig) -> str:
    return (f"Deferred: the channel's circuit is open after {channel.consecutive_failures} failed sends in a row "
            f"(until {channel.circuit_open_until:%Y-%m-%d %H:%M:%S %Z}).")


def gate(rows: list[Delivery], now: datetime) -> Gate:
    """Sort claimed rows into those to send, to suppress (channel disabled) and to defer (open breaker)."""
    out = Gate()
    by_channel: dict[int, list[Delivery]] = defaultdict(list)
    for row in rows:
        if row.channel_id is None:
            out.send.append(row)
        else:
            by_channel[row.channel_id].append(row)
    for channel_id, group in by_channel.items():
        channel = group[0].channel
        if not channel.enabled:
            out.suppressed += group
        elif channel.circuit_open_until is None:
            out.send += group
        elif channel.circuit_open_until > now:
            out.deferred += [(row, channel.circuit_open_until, open_reason(channel)) for row in group]
        elif _take_probe(channel, now):
            out.probes.add(channel_id)
            out.send.append(group[0])
            out.deferred += [(row, channel.circuit_open_until, open_reason(channel)) for row in group[1:]]
        else:  # another worker is probing
            out.deferred += [(row, channel.circuit_open_until, open_reason(channel)) for row in group]
    return out


def _take_probe(channel: ChannelConfig, now: datetime) -> bool:
    until = now + _cooldown()
    won = ChannelConfig.objects.filter(pk=channel.pk, circuit_open_until=channel.circuit_open_until).update(circuit_open_until=until)
    channel.circuit_open_until = until if won else ChannelConfig.objects.values_list("circuit_open_until", flat=True).get(pk=channel.pk)
    return bool(won)


def record(channel: ChannelConfig, outcomes: list[bool], now: datetime, *, probe: bool) -> bool:
    """Count a channel's send outcomes (in order) into its breaker. True when the breaker closed
    after being open (its deferred deliveries may go now)."""
    if not outcomes:
        return False
    trailing = 0
    for ok in reversed(outcomes):
        if ok:
            break
        trailing += 1
    streak = trailing if any(outcomes) else channel.consecutive_failures + trailing
    was_open = probe or channel.circuit_open_until is not None
    opened = streak >= settings.NOTIFICATIONS_BREAKER_FAILURES
    if streak == channel.consecutive_failures and not opened and not was_open:
        return False  # the healthy path writes nothing
    channel.consecutive_failures = streak
    channel.circuit_open_until = now + _cooldown() if opened else None
    ChannelConfig.objects.filter(pk=channel.pk).update(consecutive_failures=streak, circuit_open_until=channel.circuit_open_until)
    return was_open and not opened


def release(channel: ChannelConfig) -> list[int]:
    """The breaker closed: the channel's pending deliveries are due now (returns their ids)."""
    now = timezone.now()
    ids = list(Delivery.objects.filter(channel=channel, status=DeliveryStatus.PENDING).values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=ids).update(next_attempt_at=now, last_error="")
    return ids


def suppress_channel(channel: ChannelConfig) -> int:
    """A disabled channel: its pending and digest-waiting deliveries are suppressed now."""
    return Delivery.objects.filter(channel=channel, status__in=[DeliveryStatus.PENDING, DeliveryStatus.BATCHED]).update(
        status=DeliveryStatus.SUPPRESSED, reason=SuppressReason.CHANNEL_DISABLED, last_error="",
    )


def hold(suppressed: list[Delivery], deferred: list[tuple[Delivery, datetime, str]]) -> None:
    """Write back rows that were claimed but not sent: suppressed, or pending again until a given
    time with the claim's attempt given back (a deferral is not a failed attempt)."""
    if suppressed:
        Delivery.objects.filter(pk__in=[r.pk for r in suppressed]).update(
            status=DeliveryStatus.SUPPRESSED, reason=SuppressReason.CHANNEL_DISABLED, attempts=F("attempts") - 1, last_error="",
        )
    groups: dict[tuple[datetime, str], list[int]] = defaultdict(list)
    for row, until, why in deferred:
        groups[(until, why)].append(row.pk)
    for (until, why), ids in groups.items():
        Delivery.objects.filter(pk__in=ids).update(status=DeliveryStatus.PENDING, next_attempt_at=until, attempts=F("attempts") - 1, last_error=why)
