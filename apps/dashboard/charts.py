"""Server-side SVG charts (no JavaScript, no CDN): horizontal bars and a column trend.
Labels are escaped; the result is safe to mark_safe."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def hbars(items: list[tuple[str, float, str]], *, width: int = 300, bar: int = 16, gap: int = 6, title: str = "") -> SafeString:
    """One horizontal bar per (label, value, css class), scaled to the largest value."""
    label_w, value_w = 90, 48
    top = max((v for _, v, _ in items), default=0) or 1
    height = len(items) * (bar + gap) + gap
    span = width - label_w - value_w
    parts = [
        f'<svg class="dash-chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i, (label, value, css) in enumerate(items):
        y = gap + i * (bar + gap)
        w = 0 if not value else max(2, round(span * value / top))
        parts.append(
            f'<text x="0" y="{y + bar - 4}" class="dash-label">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar}" rx="2" class="dash-bar {escape(css)}"/>'
            f'<text x="{label_w + w + 4}" y="{y + bar - 4}" class="dash-value">{escape(_fmt(value))}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def columns(points: list[tuple[str, float | None]], *, width: int = 300, height: int = 90, top: float | None = None,
            title: str = "", css: str = "") -> SafeString:
    """A column per (label, value); None draws a gap. `top` fixes the scale (e.g. 100 for %)."""
    n = max(1, len(points))
    scale = top or max((v for _, v in points if v is not None), default=0) or 1
    step = width / n
    col = max(2, step - 3)
    base = height - 14
    parts = [
        f'<svg class="dash-chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f'<line x1="0" y1="{base}" x2="{width}" y2="{base}" class="dash-axis"/>'
    ]
    for i, (label, value) in enumerate(points):
        x = round(i * step + 1, 1)
        if value is not None:
            h = max(1, round((base - 2) * min(value, scale) / scale))
            parts.append(
                f'<rect x="{x}" y="{base - h}" width="{col:.1f}" height="{h}" class="dash-bar {escape(css)}">'
                f"<title>{escape(label)}: {escape(_fmt(value))}</title></rect>"
            )
    if points:
        parts.append(f'<text x="0" y="{height - 2}" class="dash-label">{escape(points[0][0][5:])}</text>')
        parts.append(f'<text x="{width}" y="{height - 2}" text-anchor="end" class="dash-label">{escape(points[-1][0][5:])}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}"
    return str(int(value))
