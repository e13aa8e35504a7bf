"""The example rule files shipped with the package load cleanly."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from radar.rules.loader import load_ruleset


def test_shipped_examples_load_without_errors() -> None:
    folder = Path(str(resources.files("radar.rules") / "examples"))
    rs = load_ruleset(folder)
    ids = {r.id for r in rs.rules}
    assert {
        "winback-lapsed-high-value",
        "welcome-new-customers",
        "service-followup-complaint",
        "crosssell-developing",
        "retention-at-risk",
    } <= ids
    assert rs.policy is not None
    assert all(r.rule.success is not None for r in rs.rules)
    channels = {r.id: r.rule.action.channel for r in rs.rules}
    assert channels["winback-lapsed-high-value"] == "phone"
    assert channels["welcome-new-customers"] == "email"
