"""Content-Security-Policy on every response (Django 5.2 has none built in).

The policy is built once from `settings.CSP_DIRECTIVES` (the security section of the settings,
extended per directive from the environment). Pages that need an inline `<script>` or `<style>`
(Django's changelist, Swagger UI, the browsable API, the job-run live output) mark it with
`nonce="{{ request.csp_nonce }}"`; the nonce is random per request and is added to `script-src`
and `style-src` only when a page used it, so every other response carries the plain policy.
Nothing else inline runs: an injected `<script>` or `onclick=` has no nonce and is refused.
"""

from __future__ import annotations

import secrets

from django.conf import settings

HEADER = "Content-Security-Policy"
REPORT_ONLY_HEADER = "Content-Security-Policy-Report-Only"
NONCE_DIRECTIVES = ("script-src", "style-src")


class LazyNonce:
    """A per-request nonce, made the first time a template (or code) turns it into text."""

    __slots__ = ("_value",)

    def __init__(self):
        self._value: str | None = None

    def __str__(self) -> str:
        if self._value is None:
            self._value = secrets.token_urlsafe(18)
        return self._value

    def __bool__(self) -> bool:
        return True

    @property
    def used(self) -> bool:
        return self._value is not None


def build_policy(directives: dict[str, list[str]], *, nonce: str | None = None, report_uri: str = "") -> str:
    parts = []
    for directive, sources in directives.items():
        values = list(sources)
        if nonce and directive in NONCE_DIRECTIVES:
            values.append(f"'nonce-{nonce}'")
        parts.append(" ".join([directive, *values]) if values else directive)
    if report_uri:
        parts.append(f"report-uri {report_uri}")
    return "; ".join(parts)


class ContentSecurityPolicyMiddleware:
    """Sets the policy header on every response that has none yet (a view may send its own)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        nonce = LazyNonce()
        request.csp_nonce = nonce
        response = self.get_response(request)
        if not settings.CSP_ENABLED:
            return response
        header = REPORT_ONLY_HEADER if settings.CSP_REPORT_ONLY else HEADER
        if header not in response:
            # directives were checked at start-up (settings); the nonce only if a page used it
            response[header] = build_policy(
                settings.CSP_DIRECTIVES, nonce=str(nonce) if nonce.used else None, report_uri=settings.CSP_REPORT_URI
            )
        return response
