"""Auditors' commands: ``history``, ``view``, ``explain``, ``verify``, ``forget``, ``export``.

Thin shells over :mod:`radar.audit`; each prints a table or, with ``--format json``, JSON. Bad
input (unknown customer or action, an unparsable or future time, a missing or damaged key store)
raises a :class:`~radar.domain.errors.RadarError`, which ``main`` prints as ``error: …`` with exit
code 2. ``verify`` exits 1 when it found anything.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from radar.cli.context import engine_for
from radar.cli.output import Format, console, emit_json
from radar.cli.output import table as print_table

FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]


def _compact(value: Any, limit: int = 80) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        text = ", ".join(f"{k}={v}" for k, v in value.items())
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(value: Any) -> Any:
    """Booleans as yes/no and times to the second (``fmt`` would show 1/0 and minutes)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return value


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """:func:`radar.cli.output.table` with :func:`_cell` applied."""
    print_table(title, columns, [[_cell(v) for v in row] for row in rows])


def register(app: typer.Typer) -> None:
    @app.command()
    def history(
        customer: Annotated[str, typer.Argument(help="Customer id")],
        types: Annotated[
            list[str] | None, typer.Option("--type", help="Only these event types (repeatable)")
        ] = None,
        since: Annotated[
            str | None, typer.Option(help="Only events that occurred at or after this time")
        ] = None,
        until: Annotated[
            str | None, typer.Option(help="Only events that occurred at or before this time")
        ] = None,
        output: FormatOpt = Format.table,
    ) -> None:
        """A customer's full timeline, read from the event log (radar's own events included)."""
        from radar.audit.asof import parse_moment
        from radar.audit.history import read_history

        start = parse_moment(since, "--since") if since else None
        end = parse_moment(until, "--until") if until else None
        with engine_for() as engine:
            h = read_history(engine, customer, types=types or (), since=start, until=end)
        if output == Format.json:
            emit_json(h.to_dict())
            return
        table(
            f"history of {customer}: {len(h.events):,} of {h.total:,} events"
            + (" (forgotten)" if h.forgotten else ""),
            [
                "position",
                "occurred",
                "recorded",
                "type",
                "channel",
                "dir",
                "source",
                "facts",
                "personal",
            ],
            [
                [
                    e.position,
                    e.occurred_at,
                    e.recorded_at.isoformat(sep=" "),
                    e.type,
                    e.channel,
                    e.direction,
                    e.source,
                    _compact(e.data),
                    _compact(e.personal),
                ]
                for e in h.events
            ],
        )
        if not h.events:
            console.print(f"no event of {customer} matches the filter ({h.total:,} in total)")

    @app.command()
    def view(
        customer: Annotated[str, typer.Argument(help="Customer id")],
        as_of: Annotated[
            str | None,
            typer.Option("--as-of", help="Business time T: events that occurred by T"),
        ] = None,
        known_at: Annotated[
            str | None,
            typer.Option("--known-at", help="Knowledge time T2: events recorded by T2"),
        ] = None,
        output: FormatOpt = Format.table,
    ) -> None:
        """The integral customer view as it was: as of T, with what was recorded by T2."""
        from radar.audit.asof import customer_view, parse_moment

        t = parse_moment(as_of, "--as-of") if as_of else None
        t2 = parse_moment(known_at, "--known-at") if known_at else None
        with engine_for() as engine:
            v = customer_view(engine, customer, as_of=t, known_at=t2)
        if output == Format.json:
            emit_json(v.to_dict())
            return
        title = (
            f"{customer} as of {t.isoformat() if t else 'now'}, "
            f"known at {t2.isoformat() if t2 else 'now'}"
        )
        table(title, ["column", "value"], [[k, val] for k, val in {**v.row, **v.relative}.items()])

    @app.command()
    def explain(
        action: Annotated[str, typer.Argument(help="Action id")],
        days: Annotated[int, typer.Option(help="Outcome window after the action (days)")] = 30,
        evidence: Annotated[int, typer.Option(help="How many evidence events to list")] = 50,
        output: FormatOpt = Format.table,
    ) -> None:
        """Why radar took an action: rule, conditions, analyses, evidence and outcome."""
        from radar.audit.explain import explain_action

        with engine_for() as engine:
            x = explain_action(engine, action, outcome_days=days, evidence_limit=evidence)
        if output == Format.json:
            emit_json(x.to_dict())
            return
        a = x.action
        table(
            f"action {action}",
            ["field", "value"],
            [[k, _compact(v)] for k, v in a.items() if k != "condition_values"],
        )
        rule = x.rule
        table(
            "rule",
            ["field", "value"],
            [[k, _compact(v)] for k, v in rule.items()],
        )
        table(
            "conditions (recorded vs. reconstructed from the log at the view position)",
            ["column", "recorded", "reconstructed", "matches"],
            [[c["column"], c["recorded"], c["reconstructed"], c["matches"]] for c in x.conditions],
        )
        table(
            "groups and scores at the view position",
            ["position", "type", "what", "run_id"],
            [
                [
                    d["position"],
                    d["type"],
                    _compact(
                        {k: v for k, v in d.items() if k not in ("position", "type", "run_id")}
                    ),
                    d.get("run_id"),
                ]
                for d in x.analytics
            ],
        )
        table(
            "analysis runs",
            ["position", "run_id", "analysis", "version", "view_position"],
            [
                [r["position"], r["run_id"], r["analysis"], r["version"], r["view_position"]]
                for r in x.runs
            ],
        )
        ev = x.evidence
        table(
            f"evidence: {ev['listed']} of {ev['events_total']} events at positions <= "
            f"{ev['view_position']}",
            ["position", "occurred", "type", "channel", "facts"],
            [
                [e["position"], e["occurred_at"], e["type"], e["channel"], _compact(e["data"])]
                for e in ev["events"]
            ],
        )
        out = x.outcome
        table(
            f"outcome (linked to the action, or within {out['window_days']} days)",
            ["position", "occurred", "type", "how", "facts"],
            [
                [e["position"], e["occurred_at"], e["type"], how, _compact(e["data"])]
                for how, events in (("linked", out["linked"]), ("window", out["within_window"]))
                for e in events
            ],
        )
        table(
            "checks",
            ["check", "ok", "detail"],
            [[c.name, c.ok, c.detail] for c in x.checks],
        )

    @app.command()
    def verify(
        seal_only: Annotated[
            bool,
            typer.Option("--seal", help="Only extend the tamper-evidence seal; check nothing"),
        ] = False,
        anchor: Annotated[
            str | None,
            typer.Option(help="A chain head recorded earlier outside radar, to check against"),
        ] = None,
        output: FormatOpt = Format.table,
    ) -> None:
        """Replay the log and compare with the view, check the seal, audit consent; then seal."""
        from radar.audit.replay import seal_log, verify_radar

        with engine_for() as engine:
            if seal_only:
                sealed = seal_log(engine)
                if output == Format.json:
                    emit_json(sealed.to_dict())
                else:
                    console.print(
                        f"sealed {sealed.sealed:,} new events ({sealed.total:,} in all) up to "
                        f"position {sealed.position}; chain head {sealed.head} — record it "
                        "outside radar and pass it back with --anchor"
                    )
                return
            report = verify_radar(engine, anchor=anchor)
        if output == Format.json:
            emit_json(report.to_dict())
        else:
            _print_verify(report)
        if not report.ok:
            raise typer.Exit(1)

    @app.command()
    def forget(
        customer: Annotated[str, typer.Argument(help="Customer id")],
        reason: Annotated[str | None, typer.Option(help="Why (recorded in the event)")] = None,
        request_id: Annotated[
            str | None, typer.Option("--request-id", help="The request's reference")
        ] = None,
        yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
        output: FormatOpt = Format.table,
    ) -> None:
        """Forget a customer: destroy their key (crypto-shredding) and record it in the log."""
        from radar.audit.forget import forget_customer

        if not yes and sys.stdin.isatty():
            typer.confirm(
                f"Forget {customer}? Their personal data becomes unrecoverable.", abort=True
            )
        with engine_for() as engine:
            result = forget_customer(engine, customer, reason=reason, request_id=request_id)
        if output == Format.json:
            emit_json(result.to_dict())
            return
        table(
            f"forgot {customer}",
            ["what", "value"],
            [
                ["key destroyed", result.key_destroyed],
                ["customer.forgotten recorded", result.recorded],
                ["event position", result.position],
                ["events with personal data now unreadable", result.personal_events],
                ["export files shredded", len(result.shredded_exports)],
            ],
        )

    @app.command()
    def export(
        customer: Annotated[str, typer.Argument(help="Customer id")],
        out: Annotated[
            Path | None, typer.Option("--out", help="Write the JSON here (recorded for forget)")
        ] = None,
        output: FormatOpt = Format.json,
    ) -> None:
        """Right of access: everything radar holds about a customer, as JSON."""
        from radar.audit.export import export_customer, write_export

        with engine_for() as engine:
            doc = write_export(engine, customer, out) if out else export_customer(engine, customer)
        if output == Format.json:
            if out:
                emit_json({"customer_id": customer, "written": str(out)})
            else:
                emit_json(doc)
            return
        table(
            f"export of {customer}" + (f" → {out}" if out else ""),
            ["part", "content"],
            [
                ["forgotten", doc["forgotten"]],
                ["personal data", _compact(doc["personal_data"], 200)],
                ["history events", len(doc["history"])],
                ["actions", len(doc["actions"])],
                ["analytics", _compact(doc["analytics"]["current"], 200)],
                ["consent", _compact(doc["consent"], 200)],
            ],
        )


def _print_verify(report: Any) -> None:
    replay, chain, consent = report.replay, report.chain, report.consent
    table(
        "verify",
        ["check", "ok", "details"],
        [
            [
                "replay",
                replay.ok,
                replay.error
                or "; ".join(
                    f"{t.table}: {t.live_rows:,} live / {t.replay_rows:,} replayed"
                    + (
                        ""
                        if t.ok
                        else f", {t.missing} missing, {t.extra} extra, {t.changed} changed"
                    )
                    for t in replay.tables
                ),
            ],
            [
                "tamper evidence",
                chain.ok,
                f"{chain.checked:,} sealed events checked, {chain.unsealed:,} unsealed"
                + ("" if chain.ok else f"; {dict(chain.counts)}"),
            ],
            [
                "consent",
                consent.ok,
                f"{consent.checked:,} planned actions checked, {consent.count:,} without consent",
            ],
        ],
    )
    diffs = [
        [t.table, k["kind"], k["key"], ", ".join(k["columns"])]
        for t in replay.tables
        for k in t.keys
    ]
    if diffs:
        table("view differs from the replay", ["table", "kind", "key", "columns"], diffs)
    if chain.findings:
        table(
            "tamper evidence findings",
            ["kind", "position", "detail"],
            [[f.kind, f.position, f.detail] for f in chain.findings],
        )
    if consent.violations:
        table(
            "actions planned without consent",
            ["action", "customer", "channel", "rule", "occurred", "consent", "known then"],
            [
                [
                    v.action_id,
                    v.customer_id,
                    v.channel,
                    v.rule_id,
                    v.occurred_at,
                    v.consent,
                    v.known_when_planned,
                ]
                for v in consent.violations
            ],
        )
    if report.sealed is not None:
        s = report.sealed
        console.print(f"sealed up to position {s.position}; chain head {s.head}")
    console.print("verified: nothing found" if report.ok else "verify FOUND PROBLEMS")
