"""``radar analyze [NAME] [--as-of T] [--format json]``: the analytical CRM phase.

``radar analyze`` runs every analysis (rfm, segments, clv, leads, churn, lifecycle, mix);
``radar analyze NAME`` one of them. Each run is recorded as an ``analysis.completed`` event and
the per-customer outcomes (segment, RFM group, lifecycle stage, lead score, churn risk, CLV,
P(alive)) as per-customer events that the customer view then shows (``--no-record``: compute and
print only). ``--as-of T`` runs on the events that had occurred by T, measuring ages, recency and
tenure up to T (backtests, calibration/holdout splits, reproducing a past run). Plots go to
``<data>/plots/`` (see :mod:`radar.analytics.plots`).

An analysis with too little data is skipped with one line on stderr naming what is missing
(``leads skipped: leads: no leads with a known outcome (won/lost)``); the others still run. The
exit code is 0, or 1 when a single named analysis was skipped.

JSON output (``--format json``), stable::

    {
      "as_of": "2025-12-31T21:41:55Z",      # the moment the analyses looked from (UTC)
      "explicit_as_of": false,               # true when --as-of was given
      "view_position": 97710,                # the log position of the view that was read
      "recorded": true,                      # false with --no-record
      "appended": {"accepted": 12160, "duplicates": 0},   # events appended by this invocation
      "seconds": 4.8,
      "analyses": [                          # in run order
        {
          "analysis": "clv", "version": "1", "status": "completed",
          "run_id": "clv-3f2a…",             # also the event_id of its analysis.completed
          "as_of": "…Z", "view_position": 97710, "seconds": 0.7,
          "parameters": {…},                 # as recorded in analysis.completed
          "metrics": {…},                    # as recorded in analysis.completed
          "details": {…},                    # extra output, not recorded (e.g. weekly KM curves)
          "plots": ["radar-data/plots/clv_distribution.png"],
          "events": {"score.changed": 3912, "analysis.completed": 1}   # recorded per type
        },
        {"analysis": "leads", "version": "1", "status": "skipped", "run_id": null,
         "as_of": "…Z", "view_position": 97710, "seconds": 0.01,
         "reason": "leads skipped: leads: no leads with a known outcome (won/lost)"}
      ]
    }

``metrics`` per analysis:

* ``rfm``: ``n_customers``, ``group_counts`` {group: n}, ``groups`` [{segment, customers,
  mean_recency_days, mean_frequency, mean_monetary}], ``score_ranges``.
* ``segments``: ``k``, ``silhouette``, ``silhouette_by_k``, ``centroids`` {label: {feature:
  mean}} (read back by the next run to keep labels stable), ``segments`` [{label, size, share,
  traits}], ``matched_to_previous``, ``retired_labels``, ``notes``.
* ``clv``: ``bgnbd`` {model, time_unit, parameters {r, alpha, a, b}, log_likelihood, …},
  ``gamma_gamma`` {parameters {p, q, v}, population_mean_spend, …}, ``forecast`` {horizon,
  time_unit, annual_discount_rate, clv_total, clv_mean, expected_purchases_total, …},
  ``mean_p_alive``, ``calibration`` {calibration_end, horizon, time_unit, forecast_total,
  actual_total, relative_error_total, mae_per_customer, by_x […]} or null, ``notes``.
* ``leads``: ``cut``, ``n_train``, ``n_test``, ``n_open``, win rates, ``auc``,
  ``top_decile_lift``, ``brier``, ``reliability``, ``importances``, ``impurity_importances``,
  ``mean_open_score``, ``notes``.
* ``churn``: ``n_customers``, ``n_churned``, ``median_survival_days`` {group: days|null},
  ``survival_at`` {group: {"S(90)", "S(180)", "S(365)"}}, ``cox`` {covariates, hazard_ratios
  [{covariate, coef, hazard_ratio, ci_lower, ci_upper, p_value}], concordance, …} or null,
  ``predictions`` {n, horizon_days, mean_churn_probability, mean_expected_remaining_days,
  lifetime_horizon_days, n_beyond_follow_up} or null, ``notes``.
* ``lifecycle``: ``rules``, ``stages``, ``periods``, ``last_period``, ``shares``,
  ``transitions`` {stages, q, counts, unobserved_stages}, ``forecast`` [{step, <stage>: share}],
  ``stationary``, ``stationary_unique``, ``backtest`` {cut_index, horizon, mae, mae_overall} or
  null, ``notes``.
* ``mix``: ``conversions`` and ``revenue`` (OLS: target, n_periods, coefficients [{name,
  estimate, std_error, t, p_value, ci95}], r_squared, …), ``response_rates`` and
  ``conversion_rates`` [{channel, sent, responded, rate, ci_low, ci_high}].
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from radar.cli.output import Format, console, emit_json, errors, fail, table

#: The analyses, in run order (kept here so that a wrong name fails fast, before the models load;
#: a test checks it equals ``radar.analytics.analyses.ANALYSES``).
NAMES: tuple[str, ...] = ("rfm", "segments", "clv", "leads", "churn", "lifecycle", "mix")


def _parse_moment(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--as-of {text!r}: not an ISO 8601 moment (e.g. 2025-06-30 or 2025-06-30T12:00Z)")
        raise  # unreachable: fail exits


def register(app: typer.Typer) -> None:
    @app.command()
    def analyze(
        name: Annotated[
            str | None,
            typer.Argument(help="rfm, segments, clv, leads, churn, lifecycle or mix (default all)"),
        ] = None,
        as_of: Annotated[
            str | None,
            typer.Option("--as-of", help="Only events that occurred by this moment (ISO 8601)"),
        ] = None,
        output: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table,
        record: Annotated[
            bool, typer.Option("--record/--no-record", help="Record the runs as events")
        ] = True,
        draw: Annotated[bool, typer.Option("--plots/--no-plots", help="Write PNG plots")] = True,
        k: Annotated[
            int | None, typer.Option("--k", help="segments: number of clusters (default: best)")
        ] = None,
        definition: Annotated[
            str,
            typer.Option(
                "--churn-definition",
                help="churn: auto (per customer: contract → cancellation, else inactivity), "
                "contractual (contract customers, cancellation) or noncontractual (inactivity)",
            ),
        ] = "auto",
        inactivity_days: Annotated[
            int, typer.Option(help="churn: days without activity that count as churned")
        ] = 180,
        time_unit: Annotated[str, typer.Option(help="clv: days, weeks or months")] = "weeks",
        horizon: Annotated[float, typer.Option(help="clv: horizon in time units")] = 52.0,
        holdout: Annotated[
            float, typer.Option(help="clv: holdout for the calibration check (0: none)")
        ] = 26.0,
        discount_rate: Annotated[float, typer.Option(help="clv: annual discount rate")] = 0.10,
        seed: Annotated[int, typer.Option(help="Random seed of the models")] = 0,
    ) -> None:
        """Run the analyses (all, or NAME) and record their results as events."""
        if name is not None and name not in NAMES:
            from radar.domain.suggest import did_you_mean

            fail(
                f"unknown analysis {name!r}{did_you_mean(name, NAMES)} "
                f"(analyses: {', '.join(NAMES)})"
            )
        moment = _parse_moment(as_of) if as_of else None
        from radar.analytics.analyses import AnalysisOptions
        from radar.analytics.runner import run_analyses
        from radar.cli.context import engine_for

        names = [name] if name else None
        try:
            options = AnalysisOptions(
                seed=seed,
                k=k,
                churn_definition=definition,  # type: ignore[arg-type]
                inactivity_days=inactivity_days,
                time_unit=time_unit,
                clv_horizon=horizon,
                holdout=holdout,
                discount_rate=discount_rate,
            )
        except ValueError as e:
            fail(str(e))
            return
        with engine_for() as engine:
            log = None if output == Format.json else (lambda m: console.print(f"[dim]{m}[/]"))
            report = run_analyses(
                engine,
                names,
                as_of=moment,
                options=options,
                record=record,
                plots=draw,
                log=log or (lambda _: None),
            )
        for run in report.runs:
            if run.status == "skipped":
                errors.print(f"[yellow]{run.reason}[/]", highlight=False)
        if output == Format.json:
            emit_json(report.to_dict())
        else:
            console.print(
                f"as of {report.as_of:%Y-%m-%d %H:%M} UTC, view position "
                f"{report.view_position:,}"
                + (" (explicit --as-of)" if report.explicit_as_of else "")
            )
            for run in report.runs:
                if run.status != "completed":
                    continue
                for t in run.tables:
                    table(f"{run.analysis}: {t.title}", t.columns, t.rows)
            table(
                "analysis runs",
                ["analysis", "status", "run id", "seconds", "events recorded", "plots"],
                [
                    [
                        r.analysis,
                        r.status,
                        r.run_id or "",
                        r.seconds,
                        ", ".join(f"{k}={v}" for k, v in r.events.items()),
                        ", ".join(p.name for p in (r.outcome.plots if r.outcome else [])),
                    ]
                    for r in report.runs
                ],
            )
            if report.recorded:
                console.print(
                    f"recorded {report.appended.get('accepted', 0):,} events "
                    f"({report.appended.get('duplicates', 0):,} already recorded)"
                )
        if name and report.runs and report.runs[0].status == "skipped":
            raise typer.Exit(1)
