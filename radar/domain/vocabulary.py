"""The closed vocabularies of the event envelope: channels and directions.

These sets are part of the public contract that operational systems integrate against.
Adding a member is a compatible change; removing or renaming one is not.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """The channels on which radar records contacts and plans actions."""

    WEB = "web"
    EMAIL = "email"
    PHONE = "phone"
    SMS = "sms"
    LETTER = "letter"
    STORE = "store"
    APP = "app"
    CHAT = "chat"
    SOCIAL = "social"


class Direction(StrEnum):
    """Who took the initiative of a contact: the customer (inbound) or the company (outbound)."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


CHANNELS: tuple[str, ...] = tuple(c.value for c in Channel)
DIRECTIONS: tuple[str, ...] = tuple(d.value for d in Direction)

#: Channels on which a customer can be reached by an outbound action and so need consent.
CONSENT_CHANNELS: tuple[str, ...] = ("email", "phone", "sms", "letter", "app")
