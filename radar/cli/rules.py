"""``radar rules check|preview|apply|backtest|effect`` and ``radar actions``.

Rule files are the ``*.yaml`` / ``*.yml`` files of a folder: ``--rules DIR`` (env ``RADAR_RULES``,
default ``./rules``). Any error in the rule files is printed with its ``file:line`` and the command
exits 2 before anything is read or applied, so ``radar rules check`` can gate a CI of rule files.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer

from radar.cli.context import engine_for
from radar.cli.output import Format, console, emit_json, errors, table

RulesOpt = Annotated[
    Path | None,
    typer.Option("--rules", help="Rules folder (env RADAR_RULES, default ./rules)"),
]
AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="Reference moment (ISO 8601); default: the latest event in the view"),
]
FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]


#: Per-rule counts shown by ``preview`` and ``apply``.
_COUNT_COLUMNS = [
    "rule_id",
    "candidates",
    "planned",
    "held_out",
    "consent",
    "frequency",
    "pressure",
]


def _rules_dir(rules: Path | None) -> Path:
    if rules is not None:
        return rules
    from radar.settings import Settings

    return Settings().rules_dir


def _load(rules: Path | None) -> Any:
    """The rule set, or every located error on stderr and exit 2 (nothing is applied)."""
    from radar.rules.apply import load_rules
    from radar.rules.loader import RuleSetInvalid

    try:
        return load_rules(_rules_dir(rules))
    except RuleSetInvalid as e:
        _print_errors(e)
        raise typer.Exit(2) from None


def _print_errors(e: Any) -> None:
    """One line per located error (never wrapped, so that editors and CI can parse them)."""
    n = len(e.errors)
    errors.print(
        f"[bold red]error:[/] {n} error{'s' if n != 1 else ''} in the rule files; "
        "nothing was applied",
        highlight=False,
    )
    sys.stderr.write("".join(f"  {err}\n" for err in e.errors))


def _moment(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    from radar.audit.asof import parse_moment

    return parse_moment(text, option)


def _rows(frame: pl.DataFrame, columns: list[str]) -> list[list[Any]]:
    return [list(r) for r in frame.select(columns).iter_rows()]


def register(app: typer.Typer) -> None:
    rules_app = typer.Typer(
        help="Business rules: check, preview, apply, backtest and measure rule files.",
        no_args_is_help=True,
    )
    app.add_typer(rules_app, name="rules")

    @rules_app.command("check")
    def check(rules: RulesOpt = None, output: FormatOpt = Format.table) -> None:
        """Validate every rule file; exit 2 on any error (for a CI of rule files)."""
        from radar.rules.apply import load_rules
        from radar.rules.loader import RuleSetInvalid

        folder = _rules_dir(rules)
        try:
            ruleset = load_rules(folder)
        except RuleSetInvalid as e:
            if output == Format.json:
                emit_json(
                    {
                        "valid": False,
                        "errors": [
                            {
                                "file": x.file,
                                "line": x.line,
                                "rule_id": x.rule_id,
                                "message": x.message,
                            }
                            for x in e.errors
                        ],
                    }
                )
            _print_errors(e)
            raise typer.Exit(2) from None
        summary = {
            "valid": True,
            "folder": str(folder),
            "files": len(ruleset.file_hashes),
            "rules": [{"id": r.id, "version": r.version, "file": r.file} for r in ruleset],
            "ruleset_hash": ruleset.hash,
            "policy": ruleset.policy.model_dump() if ruleset.policy else None,
        }
        if output == Format.json:
            emit_json(summary)
            return
        table(
            f"{len(ruleset)} rules in {len(ruleset.file_hashes)} files: OK",
            ["rule", "version", "file"],
            [[r.id, r.version, f"{r.file}:{r.line}"] for r in ruleset],
        )
        console.print(f"rule-set hash {ruleset.hash}")

    @rules_app.command("preview")
    def preview(
        rules: RulesOpt = None,
        at: AtOpt = None,
        sample: Annotated[int, typer.Option(help="Sample customers per rule")] = 5,
        output: FormatOpt = Format.table,
    ) -> None:
        """Per rule: customers it would hit now, overlaps, suppressions by reason, a sample."""
        from radar.rules.whatif import preview_rules

        ruleset = _load(rules)
        with engine_for() as engine:
            result = preview_rules(engine, ruleset, at=_moment(at, "--at"), sample=sample)
        if output == Format.json:
            emit_json(result.to_dict())
            return
        console.print(
            f"view position {result.point.position:,}, reference "
            f"{result.point.reference:%Y-%m-%d %H:%M} — nothing is appended"
        )
        table(
            "rules preview",
            [*_COUNT_COLUMNS[:6], "pressure (cap)", "overlap"],
            _rows(result.by_rule, [*_COUNT_COLUMNS, "overlap"]),
        )
        if result.overlap.height:
            table(
                "overlap between rules",
                ["rule", "other rule", "customers"],
                _rows(result.overlap, ["rule_id", "other_rule_id", "customers"]),
            )
        table(
            "sample",
            ["rule", "customer", "status", "reason", "condition values"],
            _rows(
                result.sample, ["rule_id", "customer_id", "status", "reason", "condition_values"]
            ),
        )

    @rules_app.command("apply")
    def apply(rules: RulesOpt = None, at: AtOpt = None, output: FormatOpt = Format.table) -> None:
        """Append planned, suppressed and held-out action events with their provenance."""
        from radar.rules.apply import apply_rules

        ruleset = _load(rules)
        with engine_for() as engine:
            result = apply_rules(engine, ruleset, at=_moment(at, "--at"))
        if output == Format.json:
            emit_json(result.to_dict())
            return
        pub = result.publication
        console.print(
            f"rule set {pub.ruleset_hash[:12]} "
            + ("published" if pub.published else "already published")
            + f"; view position {result.point.position:,}, reference "
            f"{result.point.reference:%Y-%m-%d %H:%M}, run {result.run_id}"
        )
        table(
            "rules applied",
            ["rule", "candidates", "planned", "held out", "consent", "frequency", "pressure"],
            _rows(result.by_rule, _COUNT_COLUMNS),
        )
        console.print(
            f"stored {result.appended:,} action events ({result.duplicates:,} already stored)"
        )

    @rules_app.command("backtest")
    def backtest(
        start: Annotated[str, typer.Option("--from", help="First run (ISO 8601)")],
        end: Annotated[str, typer.Option("--to", help="Last run at or before (ISO 8601)")],
        every: Annotated[str, typer.Option(help="Cadence, e.g. 30d, 2w, 12h")] = "30d",
        rules: RulesOpt = None,
        out: Annotated[
            Path | None,
            typer.Option("--out", help="Write every decision (who, when, outcome) to JSONL/CSV"),
        ] = None,
        output: FormatOpt = Format.table,
    ) -> None:
        """Replay the rule set over past as-of views (nothing is appended)."""
        from radar.rules.actions import export_actions
        from radar.rules.whatif import backtest_rules, parse_every

        ruleset = _load(rules)
        first, last = _moment(start, "--from"), _moment(end, "--to")
        assert first is not None and last is not None
        with engine_for() as engine:
            result = backtest_rules(
                engine, ruleset, start=first, end=last, every=parse_every(every)
            )
        if out is not None:
            export_actions(result.decisions, out)
        if output == Format.json:
            emit_json(result.to_dict())
            return
        table(
            "backtest per run",
            ["run at", "rule", "candidates", "planned", "held out", "suppressed"],
            _rows(
                result.by_run,
                ["run_at", "rule_id", "candidates", "planned", "held_out", "suppressed"],
            ),
        )
        table(
            "backtest per rule (outcomes observed in the log)",
            [
                "rule",
                "runs",
                "would contact",
                "customers",
                "successes",
                "success rate",
                "held out",
                "held-out rate",
            ],
            _rows(
                result.by_rule,
                [
                    "rule_id",
                    "runs",
                    "would_contact",
                    "customers",
                    "successes",
                    "success_rate",
                    "held_out",
                    "held_out_rate",
                ],
            ),
        )
        if out is not None:
            console.print(f"decisions written to {out}")

    @rules_app.command("effect")
    def effect(
        rules: RulesOpt = None,
        by_version: Annotated[
            bool, typer.Option("--by-version/--by-rule", help="Per rule version or per rule")
        ] = True,
        mature: Annotated[
            bool, typer.Option("--mature", help="Only decisions whose success window closed")
        ] = False,
        output: FormatOpt = Format.table,
    ) -> None:
        """Per rule (and version): treated vs hold-out success rate, lift with its 95% CI."""
        from radar.rules.actions import rule_effect

        folder = _rules_dir(rules)
        ruleset = _load(rules) if folder.is_dir() else None
        with engine_for() as engine:
            result = rule_effect(engine, ruleset, by_version=by_version, mature_only=mature)
        if output == Format.json:
            emit_json(result.to_dicts())
            return
        table(
            "rule effect (success = outcome event within the window; lift = treated − hold-out)",
            [
                "rule",
                "version",
                "success",
                "treated",
                "rate",
                "hold-out",
                "rate",
                "lift",
                "95% CI",
                "contacts",
            ],
            [
                [
                    r["rule_id"],
                    r["rule_version"],
                    f"{r['event']} ≤{r['within_days']}d",
                    r["treated"],
                    r["treated_rate"],
                    r["holdout"],
                    r["holdout_rate"],
                    r["lift"],
                    _ci(r["lift_low"], r["lift_high"]),
                    r["contacts"],
                ]
                for r in result.iter_rows(named=True)
            ],
        )

    @app.command("actions")
    def actions(
        status: Annotated[
            str, typer.Option(help="open, done, planned, held_out, suppressed or all")
        ] = "open",
        channel: Annotated[str | None, typer.Option(help="Only this channel")] = None,
        campaign: Annotated[str | None, typer.Option(help="Only this campaign id")] = None,
        limit: Annotated[int | None, typer.Option(help="At most this many (listing)")] = None,
        export: Annotated[
            Path | None,
            typer.Option("--export", help="Write the actions to FILE (.jsonl or .csv)"),
        ] = None,
        output: FormatOpt = Format.table,
    ) -> None:
        """Actions for the operational systems: planned and not yet followed by an outcome
        (an event whose data.action_id references it)."""
        from radar.rules.actions import ACTION_STATUSES, export_actions, list_actions

        if status not in ACTION_STATUSES:
            from radar.cli.output import fail

            fail(f"unknown --status {status!r}: use one of {', '.join(ACTION_STATUSES)}")
        with engine_for() as engine:
            engine.project()
            frame = list_actions(
                engine.view,
                status=status,  # type: ignore[arg-type]
                channel=channel,
                campaign=campaign,
                limit=None if export is not None else limit,
            )
        if export is not None:
            n = export_actions(frame, export)
            if output == Format.json:
                emit_json({"exported": n, "file": str(export), "status": status})
            else:
                console.print(f"exported {n:,} {status} actions to {export}")
            return
        if output == Format.json:
            emit_json(frame.to_dicts())
            return
        table(
            f"{status} actions ({frame.height:,})",
            [
                "action",
                "status",
                "customer",
                "channel",
                "campaign",
                "priority",
                "rule",
                "planned at",
            ],
            [
                [
                    r["action_id"][:12],
                    r["status"],
                    r["customer_id"],
                    r["channel"],
                    r["campaign_id"],
                    r["priority"],
                    r["rule_id"],
                    r["planned_at"],
                ]
                for r in frame.iter_rows(named=True)
            ],
        )


def _ci(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "–"
    return f"[{low:+.3f}, {high:+.3f}]"
