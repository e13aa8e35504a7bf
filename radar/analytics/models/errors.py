"""Errors raised by the analytical models."""


class InsufficientData(ValueError):
    """Too little data for a model; the message names what is missing."""
