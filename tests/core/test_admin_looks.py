"""The admin's header and breadcrumbs are readable: WCAG 2.x contrast of their text on their
background, read from the stylesheets the admin loads (Django's base.css, then ours), ≥ 4.5:1."""

from __future__ import annotations

import re
from pathlib import Path

import django
import pytest

DJANGO_CSS = Path(django.__file__).parent / "contrib/admin/static/admin/css/base.css"
PORTAL_CSS = Path(__file__).resolve().parents[2] / "apps/core/static/core/portal-admin.css"


def _blocks(css: str) -> list[tuple[list[str], dict[str, str]]]:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    out = []
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        if "@media" in selectors:  # the light theme on a wide screen: media blocks are left out
            continue
        decls = dict((k.strip(), v.strip()) for k, v in (d.split(":", 1) for d in body.split(";") if ":" in d))
        out.append(([s.strip() for s in selectors.split(",")], decls))
    return out


def _cascade() -> list[tuple[list[str], dict[str, str]]]:
    return _blocks(DJANGO_CSS.read_text()) + _blocks(PORTAL_CSS.read_text())  # ours is loaded after Django's


def _value(selector: str, prop: str) -> str:
    found = None
    for selectors, decls in _cascade():
        if selector in selectors and prop in decls:
            found = decls[prop]
    assert found, f"no {prop} for {selector}"
    return _resolve(found)


def _resolve(value: str) -> str:
    for _ in range(10):
        var = re.search(r"var\((--[\w-]+)\)", value)
        if not var:
            break
        value = value.replace(var.group(0), _value(":root", var.group(1)))
    color = re.search(r"#[0-9a-fA-F]{3,6}\b", value)
    assert color, value
    return color.group(0)


def _luminance(hex_color: str) -> float:
    h = hex_color.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    channels = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: str, bg: str) -> float:
    lighter, darker = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_contrast_formula_matches_wcag_reference_values():
    assert contrast("#000", "#fff") == pytest.approx(21.0)
    assert contrast("#777", "#fff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#fff", "#417690") == pytest.approx(4.98, abs=0.01)  # Django's own header blue
    assert contrast("#fff", "#79aec8") < 4.5  # white on Django's --primary: unreadable


@pytest.mark.parametrize("text, background", [
    (("#header", "color"), ("#header", "background")),
    (("#site-name a:link", "color"), ("#header", "background")),
    (("#header a:link", "color"), ("#header", "background")),
    (("#user-tools a", "color"), ("#header", "background")),
    (("div.breadcrumbs", "color"), ("div.breadcrumbs", "background")),
    (("div.breadcrumbs a", "color"), ("div.breadcrumbs", "background")),
])
def test_header_text_is_readable(text, background):
    fg, bg = _value(*text), _value(*background)
    assert contrast(fg, bg) >= 4.5, f"{text[0]} {fg} on {bg}: {contrast(fg, bg):.2f}:1"
