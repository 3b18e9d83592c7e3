"""The papers' reported numbers, kept as data beside the measured ones (chapters 6 and 8).

Tables ``table1``-``table3`` are Zou et al.'s Tables I-III; ``blades_main``, ``blades_auc`` and
``blades_sensitivity`` are BLADES' accuracy, separability and sensitivity tables (each table names its ``paper``).
``aigfd_lite/data/paper_reported.json`` holds, per table, the rows the paper reports: ``rows[name]`` is ``null``
(not transcribed) or ``{column: {metric: value}}`` with values as fractions in [0, 1]. This module validates the
file and turns a table into a DataFrame with the same (column, metric) layout as the measured tables, NaN where a
value is not transcribed. Nothing here computes a number: it only reads what was copied from the paper.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

DEFAULT_PATH = Path(__file__).parent.with_name("data") / "paper_reported.json"


class ReportedNumbersError(ValueError):
    """The reported-numbers file does not have the expected shape or ranges."""


def _check_table(name: str, table: Any) -> None:
    if not isinstance(table, dict) or not {"caption", "metrics", "columns", "rows"} <= table.keys():
        raise ReportedNumbersError(f"table {name!r} needs 'caption', 'metrics', 'columns' and 'rows'")
    if not isinstance(table["rows"], dict):
        raise ReportedNumbersError(f"table {name!r}: 'rows' must map a row name to null or {{column: {{metric: v}}}}")
    columns, metrics = set(table["columns"]), set(table["metrics"])
    for row, cells in table["rows"].items():
        if cells is None:
            continue
        if not isinstance(cells, dict):
            raise ReportedNumbersError(f"{name}/{row}: expected null or {{column: {{metric: value}}}}")
        for column, values in cells.items():
            if column not in columns:
                raise ReportedNumbersError(f"{name}/{row}: unknown column {column!r} (declared: {table['columns']})")
            if not isinstance(values, dict):
                raise ReportedNumbersError(f"{name}/{row}/{column}: expected {{metric: value}}")
            for metric, value in values.items():
                where = f"{name}/{row}/{column}/{metric}"
                if metric not in metrics:
                    raise ReportedNumbersError(f"{where}: unknown metric (declared: {table['metrics']})")
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ReportedNumbersError(f"{where}: {value!r} is not a number")
                if not 0.0 <= value <= 1.0:
                    raise ReportedNumbersError(f"{where}: {value} is outside [0, 1] (percentages must be divided by 100)")


def load_reported(path: str | Path | None = None) -> dict:
    """Read and validate the reported-numbers file; raises :class:`ReportedNumbersError` naming the bad entry."""
    path = Path(path) if path else DEFAULT_PATH
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportedNumbersError(f"cannot read the paper's reported numbers from {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("tables"), dict) or "transcribed" not in data:
        raise ReportedNumbersError(f"{path}: needs 'transcribed' and a 'tables' mapping")
    for name, table in data["tables"].items():
        _check_table(name, table)
    has_values = any(v is not None for t in data["tables"].values() for cells in t["rows"].values() if cells
                     for values in cells.values() for v in values.values())
    if bool(data["transcribed"]) != has_values:
        raise ReportedNumbersError(f"{path}: 'transcribed' is {data['transcribed']} but the file "
                                   f"{'has' if has_values else 'has no'} values")
    return data


def reported_table(name: str, path: str | Path | None = None) -> pd.DataFrame:
    """One table as a DataFrame: rows as reported, columns a (column, metric) MultiIndex; NaN = not transcribed."""
    data = load_reported(path)
    if name not in data["tables"]:
        raise KeyError(f"no table {name!r} in the reported numbers (have: {sorted(data['tables'])})")
    table = data["tables"][name]
    index = pd.MultiIndex.from_product([table["columns"], table["metrics"]], names=["generator", "metric"])
    frame = pd.DataFrame(float("nan"), index=list(table["rows"]), columns=index)
    for row, cells in table["rows"].items():
        for column, values in (cells or {}).items():
            for metric, value in values.items():
                if value is not None:
                    frame.loc[row, (column, metric)] = float(value)
    frame.index.name = f"paper (reported), {table['caption']}"
    return frame


def paper_labels(name: str, rows: list[str | None], metric: str, column: str = "mean",
                 path: str | Path | None = None) -> list[str]:
    """The paper's value for each row, as text for a column beside a measured table.

    ``rows`` holds the paper's row name for each measured row (``None``: the paper has no such row). Each label is
    the value to three decimals, "not transcribed", or "not in the paper"; never a number the file does not hold.
    """
    frame = reported_table(name, path)
    labels = []
    for row in rows:
        if row is None:
            labels.append("not in the paper")
        elif row not in frame.index:
            raise KeyError(f"no row {row!r} in reported {name} (have: {list(frame.index)})")
        else:
            value = frame.loc[row, (column, metric)]
            labels.append("not transcribed" if math.isnan(value) else f"{value:.3f}")
    return labels
