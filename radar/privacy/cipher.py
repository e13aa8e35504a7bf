"""Encryption of a customer's personal fields (AES-256-GCM, the customer id as associated data).

The token stored in an event's ``pii`` member is ``v1:`` + base64(nonce ‖ ciphertext ‖ tag).
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "v1:"


def encrypt(key: bytes, customer_id: str, plaintext: str) -> str:
    """Encrypt the personal-data JSON of one event for one customer."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), customer_id.encode("utf-8"))
    return PREFIX + base64.b64encode(nonce + sealed).decode("ascii")


def decrypt(key: bytes, customer_id: str, token: str) -> str:
    """Decrypt a token made by :func:`encrypt` (raises ``InvalidTag`` if it was tampered with)."""
    if not token.startswith(PREFIX):
        raise ValueError("unknown personal-data token format")
    blob = base64.b64decode(token[len(PREFIX) :])
    plain = AESGCM(key).decrypt(blob[:12], blob[12:], customer_id.encode("utf-8"))
    return plain.decode("utf-8")
