"""HTTP executor for `http.request` steps (requests on a worker thread). The target's API-token
credential, if it has one, is sent as a bearer token unless the step sets Authorization."""

from __future__ import annotations

import asyncio

import requests

from .base import Emit, ExecutorError, TargetSpec

BODY_CAP = 1024 * 1024


def _request(step: dict, target: TargetSpec | None, timeout: float, emit: Emit) -> int:
    headers = dict(step.get("headers") or {})
    if target is not None and target.credential_kind == "api_token" and target.secret:
        headers.setdefault("Authorization", f"Bearer {target.secret}")
    try:
        response = requests.request(
            step.get("method", "GET"), step["url"], headers=headers, data=(step.get("body") or None),
            timeout=timeout, verify=step.get("verify_tls", True), allow_redirects=False, stream=True,
        )
    except requests.RequestException as exc:
        raise ExecutorError(f"{step.get('method', 'GET')} {step['url']}: {exc}") from None
    with response:
        emit("stdout", f"HTTP {response.status_code} {response.reason}\n")
        received = 0
        for chunk in response.iter_content(chunk_size=65536, decode_unicode=False):
            received += len(chunk)
            emit("stdout", chunk.decode(response.encoding or "utf-8", "replace"))
            if received >= BODY_CAP:
                emit("stderr", "[response body truncated at 1 MiB]\n")
                break
    return response.status_code


def expected(step: dict) -> set[int] | None:
    value = step.get("expected_status")
    if value is None:
        return None
    return {value} if isinstance(value, int) else set(value)


async def request(step: dict, target: TargetSpec | None, *, timeout: float, emit: Emit) -> tuple[int, bool]:
    """Send the request; returns (status code, whether it is the expected status)."""
    code = await asyncio.wait_for(asyncio.to_thread(_request, step, target, timeout, emit), timeout + 5)
    wanted = expected(step)
    ok = (200 <= code < 300) if wanted is None else code in wanted
    return code, ok
