"""Loading rule files: every error located by file:line and rule id; hashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from radar.rules.loader import RuleError, RuleSetInvalid, load_ruleset, rule_hash
from radar.rules.schema import rules_json_schema

GOOD_RULE = """\
  - id: {id}
    description: Win back lapsed customers
    owner: retention
    when: lifecycle_stage == 'lapsed' and days_since_last_purchase > 90
    action: {{channel: email, campaign_id: WB-1, priority: 5}}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def errors_of(folder: Path) -> list[RuleError]:
    with pytest.raises(RuleSetInvalid) as info:
        load_ruleset(folder)
    return info.value.errors


def one_error(folder: Path) -> RuleError:
    errors = errors_of(folder)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def test_unknown_column_is_located_with_file_line_rule_and_suggestion(tmp_path: Path) -> None:
    write(
        tmp_path,
        "winback.yaml",
        "rules:\n"
        "  - id: winback-lapsed\n"
        "    description: d\n"
        "    owner: o\n"
        "    when: days_since_last_purchse > 90\n"
        "    action: {channel: phone, campaign_id: W}\n",
    )
    err = one_error(tmp_path)
    assert (err.file, err.line, err.rule_id) == (
        str(tmp_path / "winback.yaml"),
        5,
        "winback-lapsed",
    )
    assert str(err).startswith(
        f"{tmp_path / 'winback.yaml'}:5: rule winback-lapsed: unknown column "
        "'days_since_last_purchse' (did you mean 'days_since_last_purchase'?)"
    )


def test_malformed_yaml_is_located_at_the_yaml_error_mark(tmp_path: Path) -> None:
    write(tmp_path, "broken.yaml", "rules:\n  - id: a\n    when: [x\n    owner: o\n")
    err = one_error(tmp_path)
    assert err.file.endswith("broken.yaml") and err.line == 4
    assert "malformed YAML" in err.message


def test_unknown_keys_are_located_and_suggested(tmp_path: Path) -> None:
    rule = GOOD_RULE.format(id="r1").replace("priority: 5", "priorty: 5")
    write(tmp_path, "a.yaml", "rules:\n" + rule + "    holdotu: 5\n")
    errors = sorted(errors_of(tmp_path), key=lambda e: e.line or 0)
    assert [(e.line, e.rule_id) for e in errors] == [(6, "r1"), (7, "r1")]
    assert "unknown key 'priorty' in action (did you mean 'priority'?)" in errors[0].message
    assert "unknown key 'holdotu' (did you mean 'holdout'?)" in errors[1].message


def test_string_compared_with_number_is_a_located_type_error(tmp_path: Path) -> None:
    rule = GOOD_RULE.format(id="typed").replace(
        "days_since_last_purchase > 90", "days_since_last_purchase > '90'"
    )
    write(tmp_path, "a.yaml", "rules:\n" + rule)
    err = one_error(tmp_path)
    assert (err.line, err.rule_id) == (5, "typed")
    column = len("lifecycle_stage == 'lapsed' and days_since_last_purchase ") + 1
    assert "type error" in err.message and f"column {column} of 'when'" in err.message


def test_unknown_channel_suggests_the_closest(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "rules:\n" + GOOD_RULE.format(id="ch").replace("email", "emial"))
    err = one_error(tmp_path)
    assert err.line == 6 and err.rule_id == "ch"
    assert "unknown channel 'emial' (did you mean 'email'?)" in err.message


@pytest.mark.parametrize("holdout", ["150", "-1", "'ten'"])
def test_holdout_outside_0_to_100_is_rejected(tmp_path: Path, holdout: str) -> None:
    write(tmp_path, "a.yaml", "rules:\n" + GOOD_RULE.format(id="h") + f"    holdout: {holdout}\n")
    err = one_error(tmp_path)
    assert (err.line, err.rule_id) == (7, "h") and err.message.startswith("holdout:")


def test_duplicate_rule_ids_name_both_locations(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "rules:\n" + GOOD_RULE.format(id="same"))
    write(
        tmp_path, "b.yaml", "rules:\n" + GOOD_RULE.format(id="other") + GOOD_RULE.format(id="same")
    )
    err = one_error(tmp_path)
    assert (Path(err.file).name, err.line, err.rule_id) == ("b.yaml", 7, "same")
    assert f"also defined at {tmp_path / 'a.yaml'}:2" in err.message


def test_bad_dates_and_until_before_from_are_located(tmp_path: Path) -> None:
    text = (
        "rules:\n"
        + GOOD_RULE.format(id="bad-date")
        + "    active: {from: 2026-13-01}\n"
        + GOOD_RULE.format(id="backwards")
        + "    active:\n      from: 2026-03-01\n      until: 2026-02-01\n"
    )
    write(tmp_path, "a.yaml", text)
    errors = errors_of(tmp_path)
    assert [(e.line, e.rule_id) for e in errors] == [(7, "bad-date"), (13, "backwards")]
    assert "bad date '2026-13-01'" in errors[0].message
    assert "until 2026-02-01 is before from 2026-03-01" in errors[1].message


def test_all_errors_are_collected_not_just_the_first(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "rules:\n" + GOOD_RULE.format(id="a").replace("email", "fax"))
    write(tmp_path, "b.yaml", "rules:\n" + GOOD_RULE.format(id="b").replace("> 90", "> 'x'"))
    write(tmp_path, "c.yaml", "rules: [\n")
    errors = errors_of(tmp_path)
    assert sorted(Path(e.file).name for e in errors) == ["a.yaml", "b.yaml", "c.yaml"]
    with pytest.raises(RuleSetInvalid, match="3 errors in the rule files"):
        load_ruleset(tmp_path)


def test_one_bad_rule_means_no_rule_set_at_all(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", "rules:\n" + GOOD_RULE.format(id="fine"))
    write(tmp_path, "bad.yaml", "rules:\n" + GOOD_RULE.format(id="broken").replace("owner", "ownr"))
    with pytest.raises(RuleSetInvalid):
        load_ruleset(tmp_path)


def test_policy_defined_twice_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "policy: {max_outbound: 2, per_days: 7}\n")
    write(tmp_path, "b.yaml", "policy: {max_outbound: 3, per_days: 7}\n")
    err = one_error(tmp_path)
    assert "policy defined twice" in err.message and "a.yaml:1" in err.message


def test_hashes_version_and_policy_are_recorded(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "a.yaml",
        "policy: {max_outbound: 2, per_days: 7}\nrules:\n"
        + GOOD_RULE.format(id="r1")
        + GOOD_RULE.format(id="r2")
        + '    version: "7"\n',
    )
    rs = load_ruleset(tmp_path)
    r1, r2 = rs.rules
    assert r1.version == r1.hash[:12] and r2.version == "7"
    assert r1.hash == rule_hash(r1.rule) and len(r1.hash) == 64
    assert rs.file_hashes == {str(path): r1.file_hash}
    assert rs.policy is not None and rs.policy.max_outbound == 2
    assert len(rs.hash) == 64 and rs.hash not in (r1.hash, r2.hash)


def test_reformatting_a_rule_keeps_its_hash_but_changing_it_does_not(tmp_path: Path) -> None:
    one = tmp_path / "one"
    two = tmp_path / "two"
    three = tmp_path / "three"
    for d in (one, two, three):
        d.mkdir()
    write(one, "a.yaml", "rules:\n" + GOOD_RULE.format(id="r"))
    reformatted = (
        "rules:\n- action:\n    priority: 5\n    campaign_id: WB-1\n    channel: email\n"
        "  when: \"lifecycle_stage == 'lapsed' and days_since_last_purchase > 90\"\n"
        "  owner: retention\n  id: r\n  description: Win back lapsed customers\n  holdout: 0\n"
    )
    write(two, "a.yaml", reformatted)
    write(three, "a.yaml", "rules:\n" + GOOD_RULE.format(id="r").replace("> 90", "> 91"))
    h1, h2, h3 = (load_ruleset(d) for d in (one, two, three))
    assert h1.rules[0].hash == h2.rules[0].hash and h1.hash == h2.hash
    assert h1.file_hashes != h2.file_hashes
    assert h3.rules[0].hash != h1.rules[0].hash and h3.hash != h1.hash


def test_a_when_in_a_literal_block_is_located_on_its_own_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "rules:\n  - id: blk\n    description: d\n    owner: o\n    when: |\n"
        "      clv > 10 and\n      segmnt == 'x'\n    action: {channel: email, campaign_id: C}\n",
    )
    err = one_error(tmp_path)
    assert err.line == 7 and "column 1 of 'when'" in err.message


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    assert "no such folder" in one_error(tmp_path / "nope").message


def test_json_schema_describes_the_format() -> None:
    schema = rules_json_schema()
    json.dumps(schema)
    rule = schema["$defs"]["Rule"]
    assert set(rule["required"]) >= {"id", "when", "action", "description", "owner"}
    assert "email" in schema["$defs"]["Action"]["properties"]["channel"]["enum"]
    assert "from" in schema["$defs"]["Active"]["properties"]
    assert schema["additionalProperties"] is False
