"""Encryption of secrets stored in the database (TLS keys, registry passwords).

The key is settings.FERNET_KEY (DASHBOARD_FERNET_KEY, or var/fernet_key that
`make run` generates), never derived from SECRET_KEY: rotating the one must not
make the secrets sealed with the other unreadable. Settings refuse to start
without it.
"""

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet():
    return Fernet(settings.FERNET_KEY)


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
