"""The final schedule as a server-rendered SVG timeline (no JavaScript; the style of
apps/dashboard/charts.py): one lane per person, a day grid in the schedule's time zone, gaps as
red bands across every lane. Labels are escaped; the result is safe to mark_safe."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from .engine import Slice

PALETTE = ("#1565c0", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037", "#ad1457", "#455a64")
GAP = "#c62828"


def timeline_svg(
    pieces: list[Slice],
    names: dict[int, str],
    *,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    width: int = 980,
    lane: int = 18,
    title: str = "Final schedule",
) -> SafeString:
    """One lane per person on call in [start, end); gaps highlighted; day lines at local midnight."""
    label_w, top = 110, 22
    people = []
    for p in pieces:
        if p.user_id is not None and p.user_id not in people:
            people.append(p.user_id)
    rows = len(people) + 1  # the last lane lists the gaps
    height = top + rows * (lane + 4) + 6
    span = (end - start).total_seconds() or 1
    plot = width - label_w - 4

    def x(t: datetime) -> float:
        return round(label_w + plot * max(0.0, min(1.0, (t - start).total_seconds() / span)), 1)

    parts = [
        f'<svg class="dash-chart oncall-timeline" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">'
        f"<title>{escape(title)}</title>"
    ]
    day = start.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        if day >= start:
            parts.append(f'<line x1="{x(day)}" y1="{top - 4}" x2="{x(day)}" y2="{height - 4}" stroke="#ccc"/>')
        mid = max(day, start) + (min(day + timedelta(days=1), end) - max(day, start)) / 2
        parts.append(f'<text x="{x(mid)}" y="{top - 8}" text-anchor="middle" fill="#555">{escape(day.strftime("%a %d"))}</text>')
        day = (day + timedelta(days=1, hours=2)).replace(hour=0)  # next local midnight, DST-safe
    for i, person in enumerate(people):
        y = top + i * (lane + 4)
        colour = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<text x="0" y="{y + lane - 5}" class="dash-label">{escape(str(names.get(person, f"user {person}"))[:18])}</text>'
        )
        for p in pieces:
            if p.user_id == person:
                w = max(1.0, x(p.end) - x(p.start))
                tip = f"{names.get(person, person)}: {p.start.astimezone(tz):%a %d %H:%M} → {p.end.astimezone(tz):%a %d %H:%M} ({p.source})"
                parts.append(
                    f'<rect x="{x(p.start)}" y="{y}" width="{w:.1f}" height="{lane}" rx="2" fill="{colour}" '
                    f'class="dash-bar oncall-{escape(p.source)}"><title>{escape(tip)}</title></rect>'
                )
    y = top + len(people) * (lane + 4)
    holes = [p for p in pieces if p.user_id is None]
    parts.append(f'<text x="0" y="{y + lane - 5}" fill="{GAP}">{"gaps" if holes else "no gaps"}</text>')
    for p in holes:
        w = max(2.0, x(p.end) - x(p.start))
        tip = f"Nobody on call: {p.start.astimezone(tz):%a %d %H:%M} → {p.end.astimezone(tz):%a %d %H:%M}"
        parts.append(
            f'<rect x="{x(p.start)}" y="{top - 4}" width="{w:.1f}" height="{height - top}" fill="{GAP}" fill-opacity="0.18" '
            f'class="oncall-gap"><title>{escape(tip)}</title></rect>'
            f'<rect x="{x(p.start)}" y="{y}" width="{w:.1f}" height="{lane}" fill="{GAP}"><title>{escape(tip)}</title></rect>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))
