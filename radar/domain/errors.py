"""Errors of the domain: each names where the problem is, so users can fix their input."""

from __future__ import annotations


class RadarError(Exception):
    """Base of every error radar reports to a user (CLI exit code 2, HTTP 4xx)."""


class InvalidEvent(RadarError):
    """An event does not fit the envelope or its type's payload.

    ``where`` locates it (``file.jsonl:12`` or ``events[3]``), ``field`` names the offending field.
    """

    def __init__(self, reason: str, *, where: str = "", field: str = "") -> None:
        self.reason = reason
        self.where = where
        self.field = field
        loc = f"{where}: " if where else ""
        fld = f"{field}: " if field else ""
        super().__init__(f"{loc}{fld}{reason}")


class NotFound(RadarError):
    """Something asked for (a customer, an action, a run) does not exist."""


class ConfigurationError(RadarError):
    """The settings do not describe a usable engine (bad URL, missing folder, damaged key store)."""
