"""Audit: evidence for auditors that the event log was not altered, and replays of it.

``radar.audit.chain`` seals the event store with a hash chain and verifies it (``radar verify``);
see its docstring for the public API. Importing this package has no side effects.
"""
