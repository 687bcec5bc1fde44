"""AES-256-GCM encryption of stored secrets under versioned keys from the environment.

`PORTAL_ENCRYPTION_KEYS="2:<base64 32 bytes>,1:<base64 32 bytes>"`: the highest version encrypts,
every listed version decrypts. A stored value looks like `v2$<base64(nonce‖ciphertext‖tag)>`, so
the key that sealed it is known without trying. Rotation: add a new version, run
`manage.py rotate_encryption_key` (re-encrypts every column declared with `EncryptedTextField`),
then drop the old version.

Only `decrypt()` (through a model's `get_secret()`) turns a stored value back into plaintext.
"""

from __future__ import annotations

import base64
import binascii
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PLACEHOLDER = "********"
_NONCE = 12


class DecryptionError(Exception):
    """A stored secret cannot be decrypted (unknown key version or tampered value)."""


def parse_keys(raw: str) -> dict[int, bytes]:
    keys: dict[int, bytes] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        version, sep, material = part.partition(":")
        if not sep or not version.isdigit():
            raise ImproperlyConfigured("PORTAL_ENCRYPTION_KEYS entries look like '<version>:<base64 key>'")
        try:
            key = base64.urlsafe_b64decode(material + "=" * (-len(material) % 4))
        except (binascii.Error, ValueError) as exc:
            raise ImproperlyConfigured(f"PORTAL_ENCRYPTION_KEYS version {version}: not base64") from exc
        if len(key) != 32:
            raise ImproperlyConfigured(f"PORTAL_ENCRYPTION_KEYS version {version}: key must be 32 bytes")
        keys[int(version)] = key
    if not keys:
        raise ImproperlyConfigured("PORTAL_ENCRYPTION_KEYS holds no key")
    return keys


@lru_cache(maxsize=4)
def _keys(raw: str) -> dict[int, bytes]:
    return parse_keys(raw)


def keys() -> dict[int, bytes]:
    return _keys(settings.PORTAL_ENCRYPTION_KEYS)


@lru_cache(maxsize=8)
def _aead(key: bytes) -> AESGCM:
    return AESGCM(key)  # set up once per key: a batch decrypts a secret per channel


def current_version() -> int:
    return max(keys())


def generate_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def encrypt(plaintext: str, *, version: int | None = None) -> str:
    version = current_version() if version is None else version
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(keys()[version]).encrypt(nonce, plaintext.encode(), f"v{version}".encode())
    return f"v{version}${base64.urlsafe_b64encode(nonce + sealed).decode()}"


def version_of(token: str) -> int | None:
    head, sep, _ = (token or "").partition("$")
    if not sep or not head.startswith("v") or not head[1:].isdigit():
        return None
    return int(head[1:])


def decrypt(token: str) -> str:
    version = version_of(token)
    if version is None:
        raise DecryptionError("not an encrypted value")
    key = keys().get(version)
    if key is None:
        raise DecryptionError(f"key version {version} is not in PORTAL_ENCRYPTION_KEYS")
    try:
        raw = base64.urlsafe_b64decode(token.partition("$")[2])
        return _aead(key).decrypt(raw[:_NONCE], raw[_NONCE:], f"v{version}".encode()).decode()
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise DecryptionError("value was tampered with or sealed under another key") from exc


def needs_rotation(token: str) -> bool:
    return bool(token) and version_of(token) != current_version()


def reencrypt(token: str) -> str:
    return encrypt(decrypt(token)) if needs_rotation(token) else token


# Every encrypted column, so the rotation command finds them all without a list to maintain.
ENCRYPTED_FIELDS: list[tuple[type[models.Model], str]] = []


class EncryptedTextField(models.TextField):
    """A column that holds a sealed value (never plaintext). Assign with `encrypt()`, read with
    `decrypt()`; the field registers itself for key rotation."""

    def contribute_to_class(self, cls, name, private_only=False):
        super().contribute_to_class(cls, name, private_only=private_only)
        if not cls._meta.abstract and (cls, name) not in ENCRYPTED_FIELDS:
            ENCRYPTED_FIELDS.append((cls, name))


def rotate_all() -> dict[str, int]:
    """Re-encrypt every stored secret under the newest key version; returns rows changed per column."""
    from django.db import transaction

    changed: dict[str, int] = {}
    current = f"v{current_version()}$"
    for model, field in ENCRYPTED_FIELDS:
        label = f"{model._meta.label}.{field}"
        changed[label] = 0
        stale = model._base_manager.exclude(**{f"{field}__startswith": current}).exclude(**{field: ""})
        for pk in list(stale.values_list("pk", flat=True)):
            with transaction.atomic():
                row = model._base_manager.select_for_update().get(pk=pk)
                token = getattr(row, field)
                if needs_rotation(token):
                    model._base_manager.filter(pk=pk).update(**{field: reencrypt(token)})
                    changed[label] += 1
    return changed
