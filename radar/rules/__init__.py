"""Business rules: the contact arrangements marketers write as YAML rule files.

The pure core of the module:

- :mod:`radar.rules.schema` — the pydantic models of a rule file and its JSON Schema;
- :mod:`radar.rules.expression` — the small, safe ``when:`` condition language, type-checked
  against the typed column catalogue and compiled to parameterised DuckDB SQL;
- :mod:`radar.rules.loader` — loads a folder of rule files into a :class:`RuleSet`, collecting
  every error with its ``file:line`` and rule id (nothing is applied when any error exists);
- :mod:`radar.rules.planner` — the set-based decision (planned / suppressed / held out) for all
  rules and all customers in one DuckDB query;
- :mod:`radar.rules.effect` — the measured effect of each rule: treated vs hold-out success rates,
  lift and its 95% confidence interval.

Nothing here touches the event store: wiring decisions into action events is done elsewhere.
"""
