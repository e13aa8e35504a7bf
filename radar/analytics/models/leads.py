"""Lead scoring: a random forest on leads with a known outcome, checked on a time-based holdout.

Contract
--------
Input: a polars frame with ``lead_id``, ``customer_id``, ``created_at`` (datetime or date),
``outcome`` (1 = won, 0 = lost, null = still open) and feature columns. Features default to every
other column: numeric and boolean columns are used as they are (missing values stay NaN, which the
forest handles); string/categorical columns are one-hot encoded in one set-based pass over all
leads, keeping the ``max_categories`` most frequent values per column and folding the rest into
``<column>=__other__`` (so train, test and open leads share one encoding). Other types are ignored.

Evaluation (:class:`LeadModelResult`): the labelled leads are split by time — trained on leads
created before ``cut`` (default: the 80 % quantile of their creation times), tested on the rest:

- ``auc`` — ROC AUC on the test leads;
- ``top_decile_lift`` — win rate among the 10 % test leads with the highest predicted probability,
  divided by the test win rate;
- ``brier`` — mean squared error of the predicted probability; ``reliability`` — per decile of
  predicted probability (test leads), the count, mean predicted probability and observed win rate.

Metrics that the test window cannot support (one class only) are ``None`` with a note.
Feature importances (sorted descending, one entry per input column, one-hot parts taken
together): ``importances`` are permutation importances of the holdout model — the mean drop in
test AUC when the column is shuffled (``permutation_repeats`` times, on at most 5 000 test leads)
— which, unlike impurity importances, do not favour continuous noise. ``impurity_importances``
are the forest's impurity decreases (summed over one-hot parts) of the final model, and stand in
for ``importances`` when there is no AUC.

Scoring: the model is then refitted on ALL labelled leads and scores the open leads:
``score`` = round(100 · probability of winning), 0–100. Each tree sees a bootstrap sample of at
most ``max_tree_samples`` leads, which keeps fitting fast on large lead tables.

:class:`InsufficientData` when there are no labelled leads, fewer than 20, only one class, or a
time window (before/after the cut) without labelled leads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import polars as pl
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import brier_score_loss, roc_auc_score

from radar.analytics.models.errors import InsufficientData

MIN_LABELLED = 20
_KEYS = ("lead_id", "customer_id", "created_at", "outcome")
_OTHER = "__other__"


@dataclass(frozen=True)
class ReliabilityBin:
    """One decile of predicted probability on the test leads."""

    decile: int
    n: int
    mean_predicted: float
    observed_rate: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "decile": self.decile,
            "n": self.n,
            "mean_predicted": self.mean_predicted,
            "observed_rate": self.observed_rate,
        }


@dataclass(frozen=True, eq=False)
class LeadModelResult:
    """Holdout metrics, importances and the scores of open leads (lead_id, customer_id,
    probability, score). ``to_dict`` holds everything but the per-lead ``scores`` frame."""

    cut: datetime | date
    n_train: int
    n_test: int
    n_open: int
    train_win_rate: float
    test_win_rate: float
    auc: float | None
    top_decile_lift: float | None
    brier: float | None
    reliability: tuple[ReliabilityBin, ...]
    importances: tuple[tuple[str, float], ...]
    impurity_importances: tuple[tuple[str, float], ...]
    scores: pl.DataFrame
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cut": self.cut.isoformat(),
            "n_train": self.n_train,
            "n_test": self.n_test,
            "n_open": self.n_open,
            "train_win_rate": self.train_win_rate,
            "test_win_rate": self.test_win_rate,
            "auc": self.auc,
            "top_decile_lift": self.top_decile_lift,
            "brier": self.brier,
            "reliability": [b.to_dict() for b in self.reliability],
            "importances": [{"feature": f, "importance": v} for f, v in self.importances],
            "impurity_importances": [
                {"feature": f, "importance": v} for f, v in self.impurity_importances
            ],
            "mean_open_score": float(self.scores["score"].to_numpy().mean())
            if self.scores.height
            else None,
            "notes": list(self.notes),
        }


def score_leads(
    leads: pl.DataFrame,
    features: Sequence[str] | None = None,
    *,
    cut: datetime | date | None = None,
    seed: int = 0,
    n_estimators: int = 100,
    min_samples_leaf: int = 10,
    max_categories: int = 20,
    max_tree_samples: int = 5_000,
    permutation_repeats: int = 5,
    n_jobs: int | None = -1,
) -> LeadModelResult:
    """Train, evaluate on a time-based holdout and score open leads; see the module docstring."""
    lacking = [c for c in _KEYS if c not in leads.columns]
    if lacking:
        raise InsufficientData(f"leads: the lead frame lacks columns {lacking}")
    if features is None:
        features = [c for c in leads.columns if c not in _KEYS]
    x, names, groups = _encode(leads, features, max_categories)
    if not names:
        raise InsufficientData(f"leads: no usable feature columns among {list(features)}")
    outcome = leads["outcome"].cast(pl.Float64).to_numpy()
    labelled = ~np.isnan(outcome)
    n_lab = int(labelled.sum())
    if n_lab == 0:
        raise InsufficientData("leads: no leads with a known outcome (won/lost)")
    if n_lab < MIN_LABELLED:
        raise InsufficientData(
            f"leads: {n_lab} leads with a known outcome; at least {MIN_LABELLED} are needed"
        )
    y_all = outcome[labelled].astype(int)
    if np.unique(y_all).size < 2:
        only = "won" if y_all[0] == 1 else "lost"
        raise InsufficientData(f"leads: every labelled lead is {only}; both outcomes are needed")
    created = leads["created_at"]
    if created.null_count():
        raise InsufficientData("leads: some leads lack created_at")
    t = created.cast(pl.Int64).to_numpy()  # µs/days since epoch: only order matters
    t_lab = t[labelled]
    if cut is None:
        cut_int = int(np.quantile(t_lab, 0.8, method="lower"))
        cut_value = _from_int(created, cut_int)
    else:
        cut_value = cut
        cut_int = int(pl.Series([cut]).cast(created.dtype).cast(pl.Int64)[0])
    train = labelled & (t < cut_int)
    test = labelled & (t >= cut_int)
    if not train.any() or not test.any():
        side = "before" if not train.any() else "on or after"
        raise InsufficientData(f"leads: no labelled leads created {side} the cut {cut_value}")
    y = np.nan_to_num(outcome).astype(int)
    if np.unique(y[train]).size < 2:
        raise InsufficientData(
            f"leads: labelled leads before the cut {cut_value} are all of one outcome"
        )
    notes: list[str] = []

    def forest(n_rows: int) -> RandomForestClassifier:
        return RandomForestClassifier(
            n_estimators=n_estimators,
            min_samples_leaf=min_samples_leaf,
            max_samples=min(n_rows, max_tree_samples),
            random_state=seed,
            n_jobs=n_jobs,
        )

    model = forest(int(train.sum())).fit(x[train], y[train])
    model.set_params(n_jobs=1)  # threaded predict sums trees in racing order: not reproducible
    p_test = model.predict_proba(x[test])[:, 1]
    y_test = y[test]
    auc = lift = brier = None
    reliability: tuple[ReliabilityBin, ...] = ()
    if np.unique(y_test).size == 2:
        auc = float(roc_auc_score(y_test, p_test))
        top = np.argsort(-p_test, kind="stable")[: max(1, int(np.ceil(0.1 * p_test.size)))]
        lift = float(y_test[top].mean() / y_test.mean())
    else:
        notes.append("test window has only one outcome: AUC and lift are undefined")
    brier = float(brier_score_loss(y_test, p_test, pos_label=1)) if y_test.size else None
    reliability = _reliability(p_test, y_test)

    final = forest(n_lab).fit(x[labelled], y[labelled])
    final.set_params(n_jobs=1)
    imp = np.asarray(final.feature_importances_)
    impurity = _ranked({g: float(imp[idx].sum()) for g, idx in groups.items()})
    if auc is not None:
        importances = _ranked(
            _permutation_importance(model, x[test], y_test, groups, permutation_repeats, seed)
        )
    else:
        importances = impurity
        notes.append("feature importances are impurity-based (no holdout AUC to permute)")
    open_ = ~labelled
    p_open = final.predict_proba(x[open_])[:, 1] if open_.any() else np.zeros(0)
    scores = (
        leads.filter(pl.Series(open_))
        .select("lead_id", "customer_id")
        .with_columns(
            pl.Series("probability", p_open, dtype=pl.Float64),
            pl.Series("score", np.rint(p_open * 100).astype(np.int64), dtype=pl.Int64),
        )
        .sort("score", "lead_id", descending=[True, False])
    )
    return LeadModelResult(
        cut=cut_value,
        n_train=int(train.sum()),
        n_test=int(test.sum()),
        n_open=int(open_.sum()),
        train_win_rate=float(y[train].mean()),
        test_win_rate=float(y_test.mean()),
        auc=auc,
        top_decile_lift=lift,
        brier=brier,
        reliability=reliability,
        importances=importances,
        impurity_importances=impurity,
        scores=scores,
        notes=tuple(notes),
    )


def _encode(
    leads: pl.DataFrame, features: Sequence[str], max_categories: int
) -> tuple[np.ndarray, list[str], dict[str, np.ndarray]]:
    """Feature matrix, encoded column names, and original feature -> encoded column indices."""
    exprs: list[pl.Expr] = []
    names: list[str] = []
    groups: dict[str, list[int]] = {}
    for f in features:
        if f not in leads.columns:
            raise InsufficientData(f"leads: feature column {f!r} is missing")
        dtype = leads.schema[f]
        if dtype.is_numeric() or dtype == pl.Boolean:
            groups[f] = [len(names)]
            names.append(f)
            exprs.append(pl.col(f).cast(pl.Float64).fill_null(float("nan")).alias(f))
        elif dtype in (pl.String, pl.Categorical, pl.Enum):
            values = leads[f].cast(pl.String).fill_null("__missing__")
            top = values.value_counts(sort=True).head(max_categories)[f].sort().to_list()
            cols = [*top, _OTHER] if values.n_unique() > len(top) else top
            groups[f] = list(range(len(names), len(names) + len(cols)))
            col = pl.col(f).cast(pl.String).fill_null("__missing__")
            folded = pl.when(col.is_in(top)).then(col).otherwise(pl.lit(_OTHER))
            for v in cols:
                name = f"{f}={v}"
                names.append(name)
                exprs.append((folded == v).cast(pl.Float64).alias(name))
    if not exprs:
        return np.zeros((leads.height, 0)), [], {}
    x = leads.select(exprs).to_numpy().astype(float)
    return x, names, {g: np.array(idx) for g, idx in groups.items()}


def _ranked(values: dict[str, float]) -> tuple[tuple[str, float], ...]:
    return tuple(sorted(values.items(), key=lambda kv: (-kv[1], kv[0])))


def _permutation_importance(
    model: RandomForestClassifier,
    x: np.ndarray,
    y: np.ndarray,
    groups: dict[str, np.ndarray],
    repeats: int,
    seed: int,
    max_rows: int = 5_000,
) -> dict[str, float]:
    """Mean drop in holdout AUC when a feature's columns (all one-hot parts together) are
    shuffled across the test leads (at most ``max_rows`` of them, seeded; one batched predict)."""
    rng = np.random.default_rng(seed)
    if x.shape[0] > max_rows:
        keep = rng.choice(x.shape[0], size=max_rows, replace=False)
        x, y = x[keep], y[keep]
    if np.unique(y).size < 2:
        return {g: 0.0 for g in groups}
    n = x.shape[0]
    base = float(roc_auc_score(y, model.predict_proba(x)[:, 1]))
    blocks = []
    for idx in groups.values():
        for _ in range(repeats):
            xp = x.copy()
            xp[:, idx] = x[rng.permutation(n)][:, idx]
            blocks.append(xp)
    p = model.predict_proba(np.vstack(blocks))[:, 1].reshape(len(blocks), n)
    out: dict[str, float] = {}
    for gi, g in enumerate(groups):
        rows = p[gi * repeats : (gi + 1) * repeats]
        out[g] = base - float(np.mean([roc_auc_score(y, r) for r in rows]))
    return out


def _reliability(p: np.ndarray, y: np.ndarray) -> tuple[ReliabilityBin, ...]:
    if p.size == 0:
        return ()
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, min(10, p.size))
    out = []
    for i, idx in enumerate(bins, start=1):
        if idx.size:
            out.append(
                ReliabilityBin(
                    decile=i,
                    n=int(idx.size),
                    mean_predicted=float(p[idx].mean()),
                    observed_rate=float(y[idx].mean()),
                )
            )
    return tuple(out)


def _from_int(series: pl.Series, value: int) -> datetime | date:
    out = pl.Series([value]).cast(series.dtype)[0]
    assert isinstance(out, (datetime, date))
    return out
