"""The paper's tables with our measurements beside them, in the same columns (chapter 6).

:func:`side_by_side` stacks the rows the paper reports ("paper (reported)", read through
:func:`aigfd_lite.evaluation.reported.reported_table`) above our measured rows ("measured, <profile>") with one set of columns:
every generator either of them has, then the means. A mean over two lite generators and the paper's mean over nine
are different quantities, so the mean columns carry their count ("mean of 9", "mean of 2") and only share a column
when the counts agree. The index says, for every row, which row of the paper it corresponds to ("not in the paper"
where there is none). Cells a row does not have are NaN (shown as a dash).
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import pandas as pd

from .reported import reported_table

PAPER = "paper (reported)"
NOT_IN_PAPER = "not in the paper"


def mean_label(n_generators: int) -> str:
    return f"mean of {n_generators}"


def _relabel_mean(frame: pd.DataFrame, n_generators: int) -> pd.DataFrame:
    return frame.rename(columns={"mean": mean_label(n_generators)}, level="generator")


def side_by_side(name: str, measured: Mapping[str, pd.DataFrame], counterparts: Mapping[str, Optional[str]],
                 profile: str, metrics: Sequence[str], paper_rows: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """One table: the paper's rows of table ``name`` and our ``measured`` rows, with the same columns.

    ``measured[row]`` is a per-generator table as :func:`aigfd_lite.evaluation.metrics.metrics_table` returns (generators and
    a ``"mean"`` row; metrics as columns). ``counterparts[row]`` names the paper's row it corresponds to, or None.
    Columns: (metric, generator), one block per metric of ``metrics`` (in that order; the paper's other metrics
    are left out), in each the generators our rows measure first, then the means, then the paper's other
    generators; a column no row fills is dropped. Index: (source, row, "in the paper as").
    """
    paper = reported_table(name)
    paper_gens = [g for g in paper.columns.unique("generator") if g != "mean"]
    n_paper = len(paper_gens) if paper_gens else 9  # Table III reports only the mean over the nine generators
    rows = paper_rows if paper_rows is not None else list(paper.index)
    pieces = {}
    for row in rows:
        frame = paper.loc[[row]].copy()
        frame.index = pd.MultiIndex.from_tuples([(PAPER, row, row)])
        pieces[row] = _relabel_mean(frame, n_paper)
    measured_label = f"measured, {profile}"
    for row, table in measured.items():
        gens = [g for g in table.index if g != "mean"]
        cols = [m for m in metrics if m in table.columns]
        frame = table[cols].stack().to_frame().T
        frame.columns.names = ["generator", "metric"]
        counterpart = counterparts.get(row)
        if counterpart is not None and counterpart not in paper.index:
            raise KeyError(f"no row {counterpart!r} in the paper's {name} (have: {list(paper.index)})")
        frame.index = pd.MultiIndex.from_tuples([(measured_label, row, counterpart or NOT_IN_PAPER)])
        pieces[(measured_label, row)] = _relabel_mean(frame, len(gens))
    out = pd.concat(pieces.values())
    out.index.names = ["source", "detector or features", "in the paper as"]
    out = out.swaplevel(axis=1)
    out.columns.names = ["metric", "generator"]
    means = sorted({g for g in out.columns.unique("generator") if g.startswith("mean of")}, reverse=True)
    gens = [g for g in out.columns.unique("generator") if g not in means]
    ours = out.loc[[i for i in out.index if i[0] == measured_label]]
    shared = [g for g in gens if ours.xs(g, axis=1, level="generator").notna().to_numpy().any()]
    # the columns our rows fill come first, then the means, then the paper's other generators: a lite table
    # reads left to right without scrolling past nine empty columns
    gens, tail = shared, [g for g in gens if g not in shared]
    order = [m for m in metrics if m in out.columns.unique("metric")]
    columns = [(m, g) for m in order for g in gens + means + tail if (m, g) in out.columns]
    out = out[columns]
    return out.loc[:, out.notna().any(axis=0)]  # no empty column, so no empty block


def style(table: pd.DataFrame, caption: str = ""):
    """Three decimals, a dash where a row has no such column."""
    return table.style.format("{:.3f}", na_rep="\u2014").set_caption(caption)
