import base64
import os

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.core import crypto


def _key():
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def test_round_trip_and_key_version_is_stored(settings):
    settings.PORTAL_ENCRYPTION_KEYS = f"1:{_key()}"
    token = crypto.encrypt("s3cr3t p@ss")
    assert token.startswith("v1$") and "s3cr3t" not in token
    assert crypto.decrypt(token) == "s3cr3t p@ss"


def test_newest_key_encrypts_old_keys_still_decrypt(settings):
    k1, k2 = _key(), _key()
    settings.PORTAL_ENCRYPTION_KEYS = f"1:{k1}"
    old = crypto.encrypt("hunter2")
    settings.PORTAL_ENCRYPTION_KEYS = f"1:{k1},2:{k2}"
    assert crypto.needs_rotation(old)
    new = crypto.reencrypt(old)
    assert new.startswith("v2$") and crypto.decrypt(new) == "hunter2"
    assert not crypto.needs_rotation(new)
    settings.PORTAL_ENCRYPTION_KEYS = f"2:{k2}"
    with pytest.raises(crypto.DecryptionError, match="key version 1"):
        crypto.decrypt(old)


def test_tampered_value_is_refused(settings):
    settings.PORTAL_ENCRYPTION_KEYS = f"1:{_key()}"
    token = crypto.encrypt("value")
    raw = bytearray(base64.urlsafe_b64decode(token[3:]))
    raw[-1] ^= 1
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt("v1$" + base64.urlsafe_b64encode(bytes(raw)).decode())


@pytest.mark.parametrize("raw", ["", "nokey", "1:notbase64!!", "x:" + base64.urlsafe_b64encode(os.urandom(32)).decode(), "1:" + base64.urlsafe_b64encode(b"short").decode()])
def test_bad_key_configuration_is_refused(raw):
    with pytest.raises(ImproperlyConfigured):
        crypto.parse_keys(raw)
