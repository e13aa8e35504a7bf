"""Pure analytical models: inputs are polars frames / numpy arrays, outputs frozen dataclasses."""
