"""Loading rule files into a :class:`RuleSet`, with every error located (``file:line``, rule id).

All ``*.yaml`` / ``*.yml`` files of a folder are parsed with PyYAML's node API so that every rule
and every key maps to its line. Errors are *collected*, not raised at the first: malformed YAML,
unknown keys (with "did you mean"), invalid values (channel, holdout, dates, …), conditions that do
not parse or type-check against the column catalogue, duplicate rule ids across files (naming both
places) and a policy defined twice. When there is any error, :class:`RuleSetInvalid` is raised
with all of them, so that nothing of a broken rule set is ever applied.

Hashes (all sha256, hex): a rule's ``hash`` is taken over the canonical JSON of the validated rule
(keys sorted, no whitespace, defaults omitted) — so reformatting or reordering keys does not
change it; its default ``version`` is the first 12 hex of that hash. ``file_hashes`` are over the
raw file bytes. The rule set ``hash`` is taken over the canonical JSON of
``{"policy": …, "rules": {rule_id: rule_hash, …}}``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from radar.domain.columns import CUSTOMER_COLUMNS, Column
from radar.domain.errors import RadarError
from radar.domain.suggest import did_you_mean
from radar.rules.expression import (
    CompiledCondition,
    Condition,
    ExpressionError,
    compile_condition,
    parse_condition,
)
from radar.rules.schema import ALLOWED_KEYS, Policy, Rule

RULE_FILE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class RuleError:
    """One problem in the rule files: where (file, 1-based line), which rule, and what."""

    file: str
    line: int | None
    rule_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        rule = f"rule {self.rule_id}: " if self.rule_id else ""
        return f"{where}: {rule}{self.message}"


class RuleSetInvalid(RadarError):
    """The rule files have errors; ``errors`` holds all of them (nothing may be applied)."""

    def __init__(self, errors: Iterable[RuleError]) -> None:
        self.errors: list[RuleError] = list(errors)
        n = len(self.errors)
        head = f"{n} error{'s' if n != 1 else ''} in the rule files"
        super().__init__("\n".join([head, *(str(e) for e in self.errors)]))


@dataclass(frozen=True)
class LoadedRule:
    """A valid rule with its provenance: where it was written, its hashes and its condition."""

    rule: Rule
    file: str
    line: int
    hash: str
    file_hash: str
    version: str
    condition: Condition

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def consent_channel(self) -> str | None:
        return self.rule.consent_channel

    def active_on(self, day: date) -> bool:
        """Whether the rule applies on ``day`` (its ``active`` period, inclusive)."""
        return self.rule.active is None or self.rule.active.contains(day)

    def compile(
        self, *, param_prefix: str = "p", table_alias: str | None = None
    ) -> CompiledCondition:
        """The rule's condition as parameterised DuckDB SQL."""
        return compile_condition(self.condition, param_prefix=param_prefix, table_alias=table_alias)

    def canonical(self) -> dict[str, Any]:
        """The validated rule as canonical JSON data (the input of its hash), plus its version."""
        return {**_canonical_data(self.rule), "version": self.version}


@dataclass(frozen=True)
class RuleSet:
    """A valid, complete set of rules and the global policy, with their hashes."""

    rules: tuple[LoadedRule, ...]
    policy: Policy | None
    file_hashes: Mapping[str, str]
    hash: str
    policy_file: str | None = None

    def __iter__(self) -> Iterator[LoadedRule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, rule_id: str) -> LoadedRule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(f"no rule {rule_id!r}{did_you_mean(rule_id, [r.id for r in self.rules])}")

    @property
    def rule_hashes(self) -> dict[str, str]:
        return {r.id: r.hash for r in self.rules}

    def active_on(self, day: date) -> tuple[LoadedRule, ...]:
        return tuple(r for r in self.rules if r.active_on(day))


# ------------------------------------------------------------------------------------- hashing


def _canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _canonical_data(rule: Rule) -> dict[str, Any]:
    return rule.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude_none=True)


def rule_hash(rule: Rule) -> str:
    """sha256 (hex) of the canonical JSON of a validated rule."""
    return hashlib.sha256(_canonical_json(_canonical_data(rule))).hexdigest()


def ruleset_hash(rule_hashes: Mapping[str, str], policy: Policy | None) -> str:
    """sha256 (hex) over the rule hashes (by id) and the policy."""
    data = {
        "policy": policy.model_dump(mode="json") if policy else None,
        "rules": dict(sorted(rule_hashes.items())),
    }
    return hashlib.sha256(_canonical_json(data)).hexdigest()


# ---------------------------------------------------------------------------------------- YAML


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps: dates stay text and are validated (and located)
    by the schema instead of failing inside the YAML constructor."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _line_at(node: Node, loc: Iterable[int | str]) -> int:
    """The line of the deepest node of ``loc`` (a path of keys and indexes) that exists."""
    line = _line(node)
    for part in loc:
        if isinstance(node, MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.value == part:
                    line, node = _line(key), value
                    break
            else:
                break
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = _line(node)
        else:
            break
    return line


def _value_node(node: Node, key: str) -> Node | None:
    """The value node of ``key`` (the last one when repeated, as YAML loading keeps the last)."""
    found = None
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value == key:
                found = v
    return found


def _duplicate_keys(node: Node) -> Iterator[tuple[int, str, int]]:
    """(line, key, first line) for each key repeated within one mapping, anywhere under node."""
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for k, v in node.value:
            if isinstance(k, ScalarNode):
                if k.value in seen:
                    yield _line(k), k.value, seen[k.value]
                else:
                    seen[k.value] = _line(k)
            yield from _duplicate_keys(v)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            yield from _duplicate_keys(item)


# ------------------------------------------------------------------------------------- parsing


@dataclass
class _FileResult:
    rules: list[LoadedRule] = field(default_factory=list)
    ids: list[tuple[str, int]] = field(default_factory=list)  # every rule id written, with line
    policy: tuple[Policy, int] | None = None
    errors: list[RuleError] = field(default_factory=list)


def _pydantic_messages(
    exc: ValidationError, node: Node, kind_of_root: str, prefix: tuple[int | str, ...] = ()
) -> Iterator[tuple[int, str]]:
    """(line, message) for each error of a validation, located through the YAML node.

    ``kind_of_root`` names the validated mapping in :data:`ALLOWED_KEYS` (``rules`` for a rule).
    """
    for e in exc.errors():
        loc = tuple(e["loc"])
        path = ".".join(str(p) for p in (*prefix, *loc))
        line = _line_at(node, loc)
        kind = e["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            parents = [kind_of_root, *(p for p in (*prefix, *loc[:-1]) if isinstance(p, str))]
            parent = parents[-1] if parents else ""
            allowed = ALLOWED_KEYS.get(parent, ())
            where = f" in {parent}" if parent and parent != "rules" else ""
            yield line, f"unknown key {key!r}{where}{did_you_mean(key, allowed)}"
        elif kind == "missing":
            yield line, f"missing required key {path!r}"
        elif kind == "value_error":
            yield line, f"{path}: {e['ctx']['error']}" if path else str(e["ctx"]["error"])
        else:
            got = e.get("input")
            shown = f" (got {got!r})" if isinstance(got, str | int | float | bool) else ""
            yield line, f"{path}: {e['msg']}{shown}" if path else f"{e['msg']}{shown}"


def _parse_rule(
    raw: Any,
    node: Node,
    index: int,
    file: str,
    file_hash: str,
    columns: Mapping[str, Column],
    out: _FileResult,
) -> None:
    raw_id = raw.get("id") if isinstance(raw, dict) else None
    rule_id = raw_id if isinstance(raw_id, str) and raw_id else f"#{index + 1}"
    line = _line(node)

    def error(at: int, message: str) -> None:
        out.errors.append(RuleError(file, at, rule_id, message))

    if isinstance(raw_id, str) and raw_id:
        out.ids.append((raw_id, line))
    if not isinstance(raw, dict):
        error(line, f"a rule must be a mapping of keys (id, when, action, …), found {raw!r}")
        return
    try:
        rule = Rule.model_validate(raw)
    except ValidationError as exc:
        for at, message in _pydantic_messages(exc, node, "rules"):
            error(at, message)
        when = raw.get("when")
        if isinstance(when, str) and when.strip():
            _check_condition(when, node, columns, error)  # report condition errors as well
        return
    condition = _check_condition(rule.when, node, columns, error)
    if condition is None:
        return
    h = rule_hash(rule)
    out.rules.append(
        LoadedRule(
            rule=rule,
            file=file,
            line=line,
            hash=h,
            file_hash=file_hash,
            version=rule.version or h[:12],
            condition=condition,
        )
    )


def _check_condition(
    text: str, node: Node, columns: Mapping[str, Column], error: Any
) -> Condition | None:
    try:
        return parse_condition(text, columns)
    except ExpressionError as exc:
        value = _value_node(node, "when")
        at = _line(node) if value is None else _line(value)
        if isinstance(value, ScalarNode) and value.style == "|":
            at += 1 + text[: exc.offset].count("\n")
        error(at, f"{exc.message} (at column {_column_in_line(text, exc.offset)} of 'when')")
        return None


def _column_in_line(text: str, offset: int) -> int:
    return offset - (text.rfind("\n", 0, offset) + 1) + 1


def _parse_file(data: bytes, file: str, columns: Mapping[str, Column]) -> _FileResult:
    out = _FileResult()
    file_hash = hashlib.sha256(data).hexdigest()

    def error(line: int | None, message: str, rule_id: str | None = None) -> None:
        out.errors.append(RuleError(file, line, rule_id, message))

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        error(None, f"not UTF-8 text (byte {exc.start})")
        return out
    try:
        loader = _YamlLoader(text)
    except yaml.YAMLError as exc:  # e.g. a control character the YAML reader refuses
        error(None, f"malformed YAML: {exc}")
        return out
    try:
        root = loader.get_single_node()
        doc = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        error(line, f"malformed YAML: {problem or exc}")
        return out
    except yaml.YAMLError as exc:
        error(None, f"malformed YAML: {exc}")
        return out
    finally:
        loader.dispose()
    if root is None or doc is None:
        error(None, "empty rule file: expected 'rules:' (and optionally 'policy:')")
        return out
    if not isinstance(doc, dict) or not isinstance(root, MappingNode):
        error(_line(root), "a rule file must be a mapping with 'rules:' (and optionally 'policy:')")
        return out

    rule_nodes = _value_node(root, "rules")
    seq_items: list[Node] = list(rule_nodes.value) if isinstance(rule_nodes, SequenceNode) else []
    raw_rules_value = doc.get("rules")
    raw_list: list[Any] = raw_rules_value if isinstance(raw_rules_value, list) else []
    for at, key, first in _duplicate_keys(root):
        owner = None
        for raw, n in zip(raw_list, seq_items, strict=False):
            if isinstance(raw, dict) and _line(n) <= at <= int(n.end_mark.line) + 1:
                owner = str(raw.get("id")) if raw.get("id") else None
        error(at, f"duplicate key {key!r} (first at line {first})", owner)

    for key in doc:
        if key not in ALLOWED_KEYS[""]:
            at = _line_at(root, [key]) if isinstance(key, str) else _line(root)
            error(at, f"unknown key {key!r}{did_you_mean(str(key), ALLOWED_KEYS[''])}")
    if "rules" not in doc and "policy" not in doc:
        error(_line(root), "missing 'rules:' (a list of rules)")

    if "policy" in doc:
        policy_node = _value_node(root, "policy")
        assert policy_node is not None
        try:
            out.policy = (Policy.model_validate(doc["policy"]), _line_at(root, ["policy"]))
        except ValidationError as exc:
            for at, message in _pydantic_messages(exc, policy_node, "policy", ("policy",)):
                error(at, message)

    if "rules" in doc:
        raw_rules = doc["rules"]
        if raw_rules is None:
            raw_rules = []
        if not isinstance(raw_rules, list) or not isinstance(rule_nodes, SequenceNode | ScalarNode):
            error(_line_at(root, ["rules"]), "'rules' must be a list of rules")
        else:
            for i, (raw, node) in enumerate(zip(raw_rules, seq_items, strict=True)):
                _parse_rule(raw, node, i, file, file_hash, columns, out)
    return out


# ---------------------------------------------------------------------------------- public API


def load_rule_sources(
    sources: Iterable[tuple[str, bytes]], columns: Mapping[str, Column] | None = None
) -> RuleSet:
    """Load rule files given as ``(display name, bytes)``; raises :class:`RuleSetInvalid`."""
    catalogue = CUSTOMER_COLUMNS if columns is None else columns
    errors: list[RuleError] = []
    rules: list[LoadedRule] = []
    file_hashes: dict[str, str] = {}
    policy: tuple[Policy, str, int] | None = None
    first_at: dict[str, tuple[str, int]] = {}
    for name, data in sources:
        file_hashes[name] = hashlib.sha256(data).hexdigest()
        result = _parse_file(data, name, catalogue)
        errors.extend(result.errors)
        if result.policy is not None:
            if policy is not None:
                errors.append(
                    RuleError(
                        name,
                        result.policy[1],
                        None,
                        f"policy defined twice (also at {policy[1]}:{policy[2]})",
                    )
                )
            else:
                policy = (result.policy[0], name, result.policy[1])
        for rule_id, line in result.ids:
            first = first_at.setdefault(rule_id, (name, line))
            if first != (name, line):
                where = f"{first[0]}:{first[1]}"
                message = f"duplicate rule id {rule_id!r} (also defined at {where})"
                errors.append(RuleError(name, line, rule_id, message))
        rules.extend(result.rules)
    if errors:
        raise RuleSetInvalid(errors)
    the_policy = policy[0] if policy else None
    return RuleSet(
        rules=tuple(rules),
        policy=the_policy,
        file_hashes=file_hashes,
        hash=ruleset_hash({r.id: r.hash for r in rules}, the_policy),
        policy_file=policy[1] if policy else None,
    )


def rule_files(folder: str | Path) -> list[Path]:
    """The rule files of a folder (``*.yaml``, ``*.yml``; not recursive), sorted by name."""
    path = Path(folder)
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in RULE_FILE_SUFFIXES)


def load_rule_files(
    paths: Iterable[str | Path], columns: Mapping[str, Column] | None = None
) -> RuleSet:
    """Load the given rule files; raises :class:`RuleSetInvalid` with every error."""
    sources: list[tuple[str, bytes]] = []
    errors: list[RuleError] = []
    for p in paths:
        try:
            sources.append((str(p), Path(p).read_bytes()))
        except OSError as exc:
            errors.append(RuleError(str(p), None, None, f"cannot read: {exc.strerror or exc}"))
    if errors:
        raise RuleSetInvalid(errors)
    return load_rule_sources(sources, columns)


def load_ruleset(folder: str | Path, columns: Mapping[str, Column] | None = None) -> RuleSet:
    """Load every rule file of ``folder``; raises :class:`RuleSetInvalid` with every error."""
    path = Path(folder)
    if not path.is_dir():
        raise RuleSetInvalid([RuleError(str(folder), None, None, "no such folder")])
    return load_rule_files(rule_files(path), columns)


def load_rule_text(
    text: str, file: str = "<rules>", columns: Mapping[str, Column] | None = None
) -> RuleSet:
    """Load one rule file given as text (for previews and tests)."""
    return load_rule_sources([(file, text.encode("utf-8"))], columns)
