"""The seven analyses of the analytical CRM phase: feature frames as of T → pure model → outcome.

Each analysis is a function ``(Context) -> Outcome``. It reads only the feature frames of
:mod:`radar.analytics.features` (events up to ``as_of``), calls a pure model of
:mod:`radar.analytics.models`, and returns parameters, compact ``metrics`` (recorded in the run's
``analysis.completed``), ``details`` (extra JSON output, not recorded), terminal tables, plots and
the per-customer outcomes to record. Too little data raises
:class:`~radar.analytics.models.errors.InsufficientData` naming what is missing; the runner then
reports the analysis as skipped and goes on with the others.

=========  ======================================================  ============================
analysis   model                                                   per-customer outcome
=========  ======================================================  ============================
rfm        quintile R, F, M scores and named groups                segment (rfm)
segments   k-means on behaviour; labels matched to the previous    segment (kmeans)
           run's centroids (read back from its analysis.completed)
clv        BG/NBD + Gamma-Gamma; discounted CLV; calibration /     clv, p_alive
           holdout check
leads      random forest on leads with an outcome; time holdout    lead_score (best open lead)
churn      Kaplan–Meier overall and per segment; Cox; P(churn in   churn_risk (1.0 once churned)
           horizon) and expected remaining lifetime
lifecycle  stages per period; Markov Q; forecast; stationary;      lifecycle stage
           backtest
mix        OLS of weekly conversions and revenue on campaign       —
           sends per channel; response rates per channel
=========  ======================================================  ============================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import polars as pl

from radar.analytics import features as F
from radar.analytics import plots
from radar.analytics.models.bgnbd import (
    TIME_UNIT_DAYS,
    calibration_holdout,
    count_purchase_days,
    fit_bgnbd,
    summarise_purchases,
)
from radar.analytics.models.errors import InsufficientData
from radar.analytics.models.gamma_gamma import customer_lifetime_value, fit_gamma_gamma
from radar.analytics.models.leads import score_leads
from radar.analytics.models.lifecycle import STAGES, StageRules, activity_panel, analyse_lifecycle
from radar.analytics.models.mix import marketing_mix, response_rates, touches_per_period
from radar.analytics.models.rfm import rfm_inputs_from_purchases, rfm_scores
from radar.analytics.models.segments import segment_customers
from radar.analytics.models.survival import ChurnDefinition, analyse_churn, median_survival
from radar.analytics.recording import CustomerOutcomes

ChurnMode = Literal["auto", "contractual", "noncontractual"]

#: k-means features (per customer, as of T): purchase days per week of tenure, log of the
#: average order value, and the share of campaign messages answered.
SEGMENT_FEATURES: tuple[str, ...] = ("purchase_rate", "log_avg_order_value", "response_rate")
LEAD_FEATURES: tuple[str, ...] = (
    "origin",
    "product",
    "value",
    "customer_type",
    "qualified",
    "sales_contacts",
    "inbound_contacts",
    "purchases_before",
    "tenure_days",
)
#: Cox covariates: fixed customer traits, not counts that accumulate while a customer stays
#: (those would make survivors look protected). ``contractual`` drops out when constant.
CHURN_COVARIATES: tuple[str, ...] = ("customer_type", "contractual", "segment")


@dataclass(frozen=True)
class AnalysisOptions:
    """Settings of the analyses (defaults are the documented ones)."""

    seed: int = 0
    # segments
    k: int | None = None
    k_range: tuple[int, int] = (3, 8)
    # churn
    churn_definition: ChurnMode = "auto"
    inactivity_days: int = 180
    churn_horizon_days: float = 90.0
    lifetime_horizon_days: float = 1095.0
    churn_covariates: tuple[str, ...] = CHURN_COVARIATES
    # clv
    time_unit: str = "weeks"
    clv_horizon: float = 52.0
    holdout: float = 26.0
    discount_rate: float = 0.10
    margin: float = 1.0
    # lifecycle
    period: str = "1mo"
    forecast_steps: int = 6
    backtest_horizon: int = 3

    def __post_init__(self) -> None:
        if self.time_unit not in TIME_UNIT_DAYS:
            raise ValueError(f"time unit {self.time_unit!r}: use one of {sorted(TIME_UNIT_DAYS)}")
        if self.churn_definition not in ("auto", "contractual", "noncontractual"):
            raise ValueError(
                f"churn definition {self.churn_definition!r}: use auto, contractual or "
                "noncontractual"
            )


@dataclass(frozen=True)
class Table:
    """A table for the terminal."""

    title: str
    columns: tuple[str, ...]
    rows: list[list[Any]]


@dataclass
class Outcome:
    """What one analysis produced (see the module docstring)."""

    parameters: dict[str, Any]
    metrics: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    customers: CustomerOutcomes = field(default_factory=CustomerOutcomes)


@dataclass
class Context:
    """One run over one snapshot: the view, the moment, the options, shared frames."""

    con: duckdb.DuckDBPyConnection
    snap: F.Snapshot
    options: AnalysisOptions
    plots_dir: Path | None
    shared: dict[str, pl.DataFrame] = field(default_factory=dict)
    _cache: dict[str, pl.DataFrame] = field(default_factory=dict)

    def frame(self, name: str, build: Callable[[], pl.DataFrame]) -> pl.DataFrame:
        if name not in self._cache:
            self._cache[name] = build()
        return self._cache[name]

    def customers(self) -> pl.DataFrame:
        return self.frame("customers", lambda: F.customer_frame(self.con, self.snap))

    def purchases(self) -> pl.DataFrame:
        frame = self.frame("purchases", lambda: F.purchase_frame(self.con, self.snap))
        if frame.height == 0:
            raise InsufficientData("no purchases by the as-of moment")
        return frame

    def plot(self, name: str, draw: Callable[[Path], Path]) -> list[Path]:
        if self.plots_dir is None:
            return []
        return [draw(self.plots_dir / f"{name}.png")]


def _r(value: float | None, digits: int = 4) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _slug_expr(col: pl.Expr) -> pl.Expr:
    return (
        col.str.strip_chars()
        .str.to_lowercase()
        .str.replace_all(" ", "_", literal=True)
        .str.replace_all("-", "_", literal=True)
    )


def slug(name: str) -> str:
    """A group name as a rule-friendly identifier: ``"at risk"`` → ``"at_risk"``."""
    return name.strip().lower().replace(" ", "_").replace("-", "_")


# ---- rfm ---------------------------------------------------------------------------------------


def rfm(ctx: Context) -> Outcome:
    day = ctx.snap.as_of.date()
    inputs = rfm_inputs_from_purchases(ctx.purchases(), day)
    result = rfm_scores(inputs, as_of=day)
    summary = result.to_dict()
    groups = result.scores.select("customer_id", _slug_expr(pl.col("segment")).alias("segment"))
    counts = summary["segment_counts"]
    per = {row["segment"]: row for row in summary["segments"]}
    rows = [
        [
            slug(g),
            counts[g],
            per.get(g, {}).get("mean_recency_days"),
            per.get(g, {}).get("mean_frequency"),
            per.get(g, {}).get("mean_monetary"),
        ]
        for g in counts
    ]
    return Outcome(
        parameters={"frequency": "purchase days", "monetary": "total spend", "quantiles": 5},
        metrics={
            "n_customers": summary["n_customers"],
            "group_counts": {slug(g): n for g, n in counts.items()},
            "groups": [{**row, "segment": slug(row["segment"])} for row in summary["segments"]],
            "score_ranges": summary["score_ranges"],
        },
        tables=[
            Table(
                "RFM groups",
                ("group", "customers", "mean recency (days)", "mean frequency", "mean spend"),
                rows,
            )
        ],
        plots=ctx.plot("rfm_grid", lambda p: plots.rfm_grid(result.scores, p)),
        customers=CustomerOutcomes(memberships={"rfm": groups}),
    )


# ---- segments ----------------------------------------------------------------------------------


def segment_frame(customers: pl.DataFrame) -> pl.DataFrame:
    """The k-means feature frame (see :data:`SEGMENT_FEATURES`) of customers with a purchase."""
    weeks = (pl.col("tenure_days") / 7.0).clip(lower_bound=1.0)
    return customers.filter(pl.col("purchases") > 0).select(
        "customer_id",
        (pl.col("purchase_days") / weeks).alias("purchase_rate"),
        pl.col("avg_order_value").clip(lower_bound=0.01).log().alias("log_avg_order_value"),
        (pl.col("campaign_responses") / pl.col("campaigns_sent").clip(lower_bound=1))
        .clip(upper_bound=1.0)
        .alias("response_rate"),
    )


def segments(ctx: Context) -> Outcome:
    o = ctx.options
    frame = segment_frame(ctx.customers())
    notes: list[str] = []
    previous: dict[str, dict[str, float]] | None = None
    last = F.previous_run(ctx.con, "segments", ctx.snap)
    if last is not None:
        centroids = last["metrics"].get("centroids") or {}
        if centroids and all(
            set(SEGMENT_FEATURES) <= set(c) for c in centroids.values() if isinstance(c, dict)
        ):
            previous = {
                str(k): {f: float(c[f]) for f in SEGMENT_FEATURES} for k, c in centroids.items()
            }
            notes.append(f"labels matched to the previous run {last['run_id']}")
        else:
            notes.append(f"previous run {last['run_id']} used other features: labels start afresh")
    seg = segment_customers(
        frame, SEGMENT_FEATURES, k=o.k, k_range=o.k_range, previous=previous, seed=o.seed
    )
    ctx.shared["segments"] = seg.assignments
    summary = seg.to_dict()
    return Outcome(
        parameters={
            "features": list(SEGMENT_FEATURES),
            "k": o.k,
            "k_range": list(o.k_range),
            "seed": o.seed,
            "previous_run": last["run_id"] if previous and last else None,
        },
        metrics={
            "k": seg.k,
            "silhouette": seg.silhouette,
            "silhouette_by_k": summary["silhouette_by_k"],
            "centroids": seg.centroids(),
            "segments": [
                {"label": s.label, "size": s.size, "share": s.share, "traits": list(s.traits)}
                for s in seg.segments
            ],
            "matched_to_previous": seg.matched_to_previous,
            "retired_labels": list(seg.retired_labels),
            "notes": [*notes, *seg.notes],
        },
        details={"deviation_sd": {s.label: dict(s.deviation_sd) for s in seg.segments}},
        tables=[
            Table(
                f"k-means segments (k={seg.k}, silhouette {seg.silhouette or float('nan'):.3f})",
                ("segment", "customers", "share", *SEGMENT_FEATURES, "what sets it apart"),
                [
                    [
                        s.label,
                        s.size,
                        s.share,
                        *(s.centroid.get(f) for f in SEGMENT_FEATURES),
                        "; ".join(s.traits),
                    ]
                    for s in seg.segments
                ],
            )
        ],
        plots=ctx.plot(
            "segments_profiles",
            lambda p: plots.segment_profiles(
                {s.label: s.deviation_sd for s in seg.segments},
                {s.label: s.size for s in seg.segments},
                p,
            ),
        ),
        customers=CustomerOutcomes(memberships={"kmeans": seg.assignments}),
    )


# ---- clv ---------------------------------------------------------------------------------------


def clv(ctx: Context) -> Outcome:
    o = ctx.options
    purchases = ctx.purchases()
    day = ctx.snap.as_of.date()
    summary = summarise_purchases(purchases, day, time_unit=o.time_unit, amount_col="amount")
    x = summary["x"].to_numpy().astype(float)
    t_x = summary["t_x"].to_numpy()
    T = summary["T"].to_numpy()
    m_x = summary["monetary"].fill_null(float("nan")).to_numpy()
    bg = fit_bgnbd(x, t_x, T, time_unit=o.time_unit)
    spend_ok = np.isfinite(m_x) & (m_x > 0)
    gg = fit_gamma_gamma(np.where(spend_ok, m_x, 1.0), np.where(spend_ok, x, 0.0))
    if gg.q <= 1.0:
        raise InsufficientData(
            f"clv: the Gamma-Gamma fit has q = {gg.q:.3g} <= 1 (mean spend unbounded); "
            "more repeat buyers with spend are needed"
        )
    forecast = customer_lifetime_value(
        bg,
        gg,
        x,
        t_x,
        T,
        np.where(spend_ok, m_x, np.nan),
        horizon=o.clv_horizon,
        annual_discount_rate=o.discount_rate,
        margin=o.margin,
    )
    notes: list[str] = []
    check: dict[str, Any] | None = None
    if o.holdout > 0:
        try:
            check = _calibration(purchases, day, o)
        except InsufficientData as e:
            notes.append(f"calibration/holdout check skipped: {e}")
    values = summary.select("customer_id").with_columns(
        pl.Series("clv", forecast.clv), pl.Series("p_alive", forecast.p_alive)
    )
    bg_d, gg_d = bg.to_dict(), gg.to_dict()
    rows: list[list[Any]] = [[f"bgnbd {k}", v] for k, v in bg_d["parameters"].items()]
    rows += [[f"gamma-gamma {k}", v] for k, v in gg_d["parameters"].items()]
    rows += [
        ["time unit", o.time_unit],
        ["customers", int(x.size)],
        ["repeat buyers", int((x > 0).sum())],
        ["mean P(alive)", float(forecast.p_alive.mean())],
        [
            f"expected purchases next {o.clv_horizon:g} {o.time_unit}",
            float(forecast.expected_purchases.sum()),
        ],
        ["mean CLV", float(forecast.clv.mean())],
        ["total CLV", float(forecast.clv.sum())],
    ]
    if check is not None:
        rows += [
            ["holdout forecast (purchase days)", check["forecast_total"]],
            ["holdout actual (purchase days)", check["actual_total"]],
            ["holdout relative error", check["relative_error_total"]],
        ]
    return Outcome(
        parameters={
            "time_unit": o.time_unit,
            "horizon": o.clv_horizon,
            "holdout": o.holdout,
            "annual_discount_rate": o.discount_rate,
            "margin": o.margin,
        },
        metrics={
            "bgnbd": bg_d,
            "gamma_gamma": gg_d,
            "forecast": forecast.to_dict(),
            "mean_p_alive": float(forecast.p_alive.mean()),
            "calibration": check,
            "notes": notes,
        },
        tables=[
            Table("customer lifetime value (BG/NBD + Gamma-Gamma)", ("measure", "value"), rows)
        ],
        plots=ctx.plot("clv_distribution", lambda p: plots.clv_distribution(forecast.clv, p)),
        customers=CustomerOutcomes(
            scores={
                "clv": values.select("customer_id", pl.col("clv").alias("value")),
                "p_alive": values.select("customer_id", pl.col("p_alive").alias("value")),
            }
        ),
    )


def _calibration(purchases: pl.DataFrame, day: Any, o: AnalysisOptions) -> dict[str, Any]:
    """Fit BG/NBD as of ``day − holdout`` and compare its forecast with the holdout's purchases."""
    cut = day - timedelta(days=o.holdout * TIME_UNIT_DAYS[o.time_unit])
    cal = summarise_purchases(purchases, cut, time_unit=o.time_unit)
    if cal.height == 0:
        raise InsufficientData(f"no purchases before the calibration cut {cut}")
    fit = fit_bgnbd(cal["x"], cal["t_x"], cal["T"], time_unit=o.time_unit)
    actual = cal.join(count_purchase_days(purchases, cut, day), on="customer_id", how="left")
    horizon = (day - cut).days / TIME_UNIT_DAYS[o.time_unit]
    result = calibration_holdout(
        fit, cal["x"], cal["t_x"], cal["T"], actual["x_holdout"].fill_null(0), horizon
    )
    return {
        "calibration_end": cut.isoformat(),
        "fit": fit.to_dict()["parameters"],
        **result.to_dict(),
    }


# ---- leads -------------------------------------------------------------------------------------


def leads(ctx: Context) -> Outcome:
    o = ctx.options
    frame = F.lead_frame(ctx.con, ctx.snap)
    if frame.height == 0:
        raise InsufficientData("leads: no leads created by the as-of moment")
    result = score_leads(frame, LEAD_FEATURES, seed=o.seed)
    per_customer = result.scores.group_by("customer_id").agg(pl.col("score").max().alias("value"))
    d = result.to_dict()
    rows: list[list[Any]] = [
        ["labelled leads (train / test)", f"{result.n_train} / {result.n_test}"],
        ["open leads scored", result.n_open],
        ["test win rate", result.test_win_rate],
        ["AUC (time holdout)", result.auc],
        ["top-decile lift", result.top_decile_lift],
        ["Brier score", result.brier],
    ]
    rows += [[f"importance: {f}", v] for f, v in result.importances[:5]]
    return Outcome(
        parameters={"features": list(LEAD_FEATURES), "seed": o.seed, "model": "random forest"},
        metrics=d,
        tables=[Table("lead scoring", ("measure", "value"), rows)],
        customers=CustomerOutcomes(scores={"lead_score": per_customer}),
    )


# ---- churn -------------------------------------------------------------------------------------


def churn_frame(customers: pl.DataFrame, mode: ChurnMode) -> pl.DataFrame:
    """Survival input per customer under the chosen churn definition (see ``radar analyze``)."""
    frame = customers.select(
        "customer_id",
        "first_seen",
        "last_activity",
        "cancelled_at",
        pl.col("contractual").fill_null(False),
        pl.col("customer_type").fill_null("unknown"),
        pl.col("usage_product").fill_null("none"),
        pl.col("complaints").fill_null(0),
        pl.col("segment").fill_null("none"),
        pl.col("inbound_contacts").fill_null(0),
        pl.col("purchase_days").fill_null(0),
    )
    if mode == "contractual":
        frame = frame.filter(pl.col("contractual"))
        if frame.height == 0:
            raise InsufficientData("churn: no contractual customers (definition 'contractual')")
    elif mode == "noncontractual":
        frame = frame.with_columns(pl.lit(False).alias("contractual"))
    return frame


def churn(ctx: Context) -> Outcome:
    o = ctx.options
    frame = churn_frame(ctx.customers(), o.churn_definition)
    assigned = ctx.shared.get("segments")
    if assigned is not None:  # this run's segments win over the view's
        frame = frame.drop("segment").join(assigned, on="customer_id", how="left")
        frame = frame.with_columns(pl.col("segment").fill_null("none"))
    has_groups = frame["segment"].n_unique() > 1
    definition = ChurnDefinition(inactivity_days=o.inactivity_days)
    lacking = [c for c in o.churn_covariates if c not in frame.columns]
    if lacking:
        raise InsufficientData(f"churn: unknown covariates {lacking} (have {frame.columns[1:]})")
    result = analyse_churn(
        frame,
        list(o.churn_covariates),
        definition=definition,
        group_column="segment" if has_groups else None,
        as_of=ctx.snap.as_of,
        horizon_days=o.churn_horizon_days,
        lifetime_horizon_days=o.lifetime_horizon_days,
        seed=o.seed,
    )
    curves = result.curves
    medians = median_survival(curves)
    marks = (90.0, 180.0, 365.0)
    at = {
        g: {f"S({int(t)})": _r(_value_at(part, t)) for t in marks}
        for (g,), part in curves.partition_by("group", as_dict=True).items()
    }
    cox = result.cox.to_dict() if result.cox is not None else None
    pred = result.predictions
    scores: dict[str, pl.DataFrame] = {}
    pred_summary: dict[str, Any] | None = None
    if pred is not None:
        gone = pl.DataFrame({"customer_id": frame["customer_id"]}).join(
            pred.select("customer_id"), on="customer_id", how="anti"
        )
        scores["churn_risk"] = pl.concat(
            [
                pred.select("customer_id", pl.col("churn_probability").alias("value")),
                gone.with_columns(pl.lit(1.0).alias("value")),
            ]
        )
        pred_summary = {
            "n": pred.height,
            "horizon_days": o.churn_horizon_days,
            "mean_churn_probability": float(pred["churn_probability"].to_numpy().mean()),
            "mean_expected_remaining_days": float(
                pred["expected_remaining_days"].to_numpy().mean()
            ),
            "lifetime_horizon_days": o.lifetime_horizon_days,
            "n_beyond_follow_up": int(pred["beyond_follow_up"].sum()),
        }
    rows: list[list[Any]] = [[g, medians.get(g), *at.get(g, {}).values()] for g in medians]
    tables = [
        Table(
            f"Kaplan–Meier ({result.n_customers:,} customers, {result.n_churned:,} churned)",
            ("group", "median days", *(f"S({int(t)})" for t in marks)),
            rows,
        )
    ]
    if result.cox is not None:
        tables.append(
            Table(
                f"Cox model (concordance {result.cox.concordance:.3f})",
                ("covariate", "hazard ratio", "95% CI low", "95% CI high", "p"),
                [
                    [h.covariate, h.hazard_ratio, h.ci_lower, h.ci_upper, h.p_value]
                    for h in result.cox.hazard_ratios
                ],
            )
        )
    weekly = curves.filter((pl.col("t") % 7.0) == 0.0)
    return Outcome(
        parameters={
            "definition": o.churn_definition,
            **definition.to_dict(),
            "covariates": list(o.churn_covariates),
            "horizon_days": o.churn_horizon_days,
            "lifetime_horizon_days": o.lifetime_horizon_days,
            "seed": o.seed,
        },
        metrics={
            "n_customers": result.n_customers,
            "n_churned": result.n_churned,
            "median_survival_days": medians,
            "survival_at": at,
            "cox": cox,
            "predictions": pred_summary,
            "notes": list(result.notes),
        },
        details={"kaplan_meier_weekly": weekly.to_dicts()},
        tables=tables,
        plots=ctx.plot(
            "churn_survival",
            lambda p: plots.survival_curves(curves, p, title="Kaplan–Meier: customers not churned"),
        ),
        customers=CustomerOutcomes(scores=scores),
    )


def _value_at(curve: pl.DataFrame, t: float) -> float | None:
    before = curve.filter(pl.col("t") <= t)
    if before.height == 0 or float(curve["t"].max() or 0.0) < t:  # type: ignore[arg-type]
        return None
    return float(before["survival"][-1])


# ---- lifecycle ---------------------------------------------------------------------------------


def lifecycle(ctx: Context) -> Outcome:
    o = ctx.options
    cust = ctx.customers()
    regs = cust.select(
        "customer_id", pl.coalesce("registered_at", "first_seen").alias("registered_at")
    )
    buys = ctx.frame("purchases", lambda: F.purchase_frame(ctx.con, ctx.snap)).select(
        "customer_id", "occurred_at"
    )
    panel = activity_panel(regs, buys, every=o.period, end=ctx.snap.as_of)
    result = analyse_lifecycle(
        panel,
        rules=StageRules(),
        forecast_steps=o.forecast_steps,
        backtest_horizon=o.backtest_horizon,
    )
    d = result.to_dict()
    shares = d["shares"]
    last_forecast = result.forecast[-1]
    rows = [
        [
            s,
            shares[s],
            float(last_forecast[i]),
            d["stationary"][s],
            (d["backtest"] or {}).get("mae", {}).get(s),
        ]
        for i, s in enumerate(STAGES)
    ]
    metrics = {k: v for k, v in d.items() if k != "backtest"}
    if result.backtest is not None:
        metrics["backtest"] = {
            "cut_index": result.backtest.cut_index,
            "horizon": result.backtest.horizon,
            "mae": result.backtest.mae,
            "mae_overall": result.backtest.mae_overall,
        }
    else:
        metrics["backtest"] = None
    return Outcome(
        parameters={
            "period": o.period,
            **result.rules.to_dict(),
            "forecast_steps": o.forecast_steps,
            "backtest_horizon": o.backtest_horizon,
        },
        metrics=metrics,
        details={"backtest_errors": d["backtest"]["errors"] if d["backtest"] else []},
        tables=[
            Table(
                f"lifecycle stages ({result.periods} periods of {o.period})",
                (
                    "stage",
                    "share now",
                    f"forecast +{o.forecast_steps}",
                    "stationary",
                    "backtest MAE",
                ),
                rows,
            )
        ],
        plots=ctx.plot(
            "lifecycle_transitions",
            lambda p: plots.transition_heatmap(result.transitions.q, STAGES, p),
        ),
        customers=CustomerOutcomes(stages=result.current.select("customer_id", "stage")),
    )


# ---- mix ---------------------------------------------------------------------------------------


def mix(ctx: Context) -> Outcome:
    touches = F.touch_frame(ctx.con, ctx.snap)
    outcomes = F.outcome_frame(ctx.con, ctx.snap)
    if touches.height == 0:
        raise InsufficientData("mix: no campaign sends in complete weeks by the as-of moment")
    wide = touches_per_period(touches, by=("channel",))
    per_period = outcomes.join(wide, on="period", how="left").fill_null(0.0)
    drivers = [c for c in wide.columns if c != "period"]
    conv = marketing_mix(per_period, "conversions", drivers)
    rev = marketing_mix(per_period, "revenue", drivers)
    responses = F.response_frame(ctx.con, ctx.snap)
    by_channel = response_rates(
        responses, group_cols=("channel",), responded_col="responded"
    ).to_dict()
    conversion = response_rates(
        responses, group_cols=("channel",), responded_col="converted"
    ).to_dict()
    tables = [
        Table(
            f"weekly {fit.target} on campaign sends (R² {fit.r_squared:.3f}, {fit.n} weeks)",
            ("term", "estimate", "std error", "95% CI low", "95% CI high", "p"),
            [
                [c.name, c.estimate, c.std_error, c.ci_low, c.ci_high, c.p_value]
                for c in fit.coefficients
            ],
        )
        for fit in (conv, rev)
    ]
    conv_rows = {r["channel"]: r for r in conversion["rows"]}
    tables.append(
        Table(
            "response rates per channel",
            ("channel", "sent", "responded", "response rate", "converted", "conversion rate"),
            [
                [
                    r["channel"],
                    r["sent"],
                    r["responded"],
                    r["rate"],
                    conv_rows.get(r["channel"], {}).get("responded"),
                    conv_rows.get(r["channel"], {}).get("rate"),
                ]
                for r in by_channel["rows"]
            ],
        )
    )
    return Outcome(
        parameters={
            "period": "week (Monday 00:00 UTC, complete weeks)",
            "touches": "campaign.sent per channel",
            "drivers": drivers,
        },
        metrics={
            "conversions": conv.to_dict(),
            "revenue": rev.to_dict(),
            "response_rates": by_channel["rows"],
            "conversion_rates": conversion["rows"],
        },
        tables=tables,
    )


Analysis = Callable[[Context], Outcome]
#: The analyses in the order ``radar analyze`` runs them (segments before churn, which uses them).
ANALYSES: dict[str, Analysis] = {
    "rfm": rfm,
    "segments": segments,
    "clv": clv,
    "leads": leads,
    "churn": churn,
    "lifecycle": lifecycle,
    "mix": mix,
}
VERSIONS: dict[str, str] = {name: "1" for name in ANALYSES}
