"""Encryption of secrets stored in the database (TLS keys, registry passwords)."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet():
    key = settings.FERNET_KEY
    if not key:
        # Development only (settings refuse this with DEBUG off): derive a stable
        # key from SECRET_KEY so a dev database stays readable across restarts.
        digest = hashlib.sha256(("fernet:" + settings.SECRET_KEY).encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    return Fernet(key)


def encrypt(plaintext: str) -> str:
    if not plaintext:
        return ""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("stored secret cannot be decrypted with the current key") from exc
