"""The transcription is verified, not trusted: every value of paper_reported.json equals ../shared/paper-tables.md.

paper-tables.md holds the two papers' tables as they print them (percentages). This test parses its markdown tables
on its own, maps the papers' row and column names to the JSON's, and checks both directions: every number of the
markdown is in the JSON (divided by 100, except BLADES' F-score) and the JSON holds no number the markdown lacks.
"""
import math
from pathlib import Path

import pytest

from aigfd_lite.evaluation.reported import load_reported
from conftest import ROOT

PAPER_TABLES = ROOT.parent / "shared" / "paper-tables.md"
GENERATORS = ["StyleGAN2", "VQGAN", "LDM", "DDIM", "SDv2.1", "FreeDoM", "HPS", "Midjourney", "SDXL"]
# The papers' names for rows and columns where the JSON uses another (everything else is spelled the same).
NAMES = {"Ours": "ours", "Average": "mean", "Avg.": "mean", "EXIF tag ranking only": "EXIF ranking only",
         "face manipulation classification only": "manipulation only", "both (the method)": "both (ours)",
         "F-score (0-1)": "f_score"}


def markdown_tables(text: str) -> dict[str, list[list[str]]]:
    """Each '### ' heading's first table, as rows of stripped cells (the separator row dropped)."""
    tables, heading = {}, None
    for line in text.splitlines():
        if line.startswith("### "):
            heading = line[4:].split(":")[0].strip()
        elif line.startswith("|") and heading:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not set("".join(cells)) <= set("-: "):
                tables.setdefault(heading, []).append(cells)
    return tables


def cells_of(table: list[list[str]], layout: str, metric: str | None = None) -> dict[tuple, float]:
    """(row, column, metric) -> printed value, for the four shapes the papers use."""
    header, body = table[0], table[1:]
    out = {}
    for row in body:
        name = NAMES.get(row[0], row[0])
        for head, value in zip(header[1:], row[1:]):
            if layout == "transposed":  # rows are generators, columns are methods
                out[(NAMES.get(head, head), name, metric)] = float(value)
            elif layout == "metric columns":  # columns are metrics of one 'mean' or 'all' column
                column, m = metric, NAMES.get(head, head).replace("mean ", "").lower()
                out[(name, column, m)] = float(value)
            else:
                out[(name, NAMES.get(head, head), metric)] = float(value)
    return out


def table1_cells(table: list[list[str]]) -> dict[tuple, float]:
    """Table I alternates '<generator> Acc' and 'AP' columns, ending with 'Average Acc' and 'AP'."""
    out = {}
    for row in table[1:]:
        values = row[1:]
        assert len(values) == 2 * (len(GENERATORS) + 1), row[0]
        for i, generator in enumerate(GENERATORS + ["mean"]):
            out[(NAMES.get(row[0], row[0]), generator, "acc")] = float(values[2 * i])
            out[(NAMES.get(row[0], row[0]), generator, "ap")] = float(values[2 * i + 1])
    header = " ".join(table[0])
    assert all(g in header for g in GENERATORS) and "Average Acc" in header
    return out


def expected() -> dict[str, dict[tuple, float]]:
    if not PAPER_TABLES.is_file():
        pytest.fail(f"{PAPER_TABLES} is missing: the transcription cannot be verified (CI lays ../shared beside the clone)")
    md = markdown_tables(PAPER_TABLES.read_text())
    return {
        "table1": table1_cells(md["Table I"]),
        "table2": cells_of(md["Table II"], "transposed", "auc"),
        "table3": cells_of(md["Table III"], "metric columns", "mean"),
        "blades_main": cells_of(md["Main results"], "plain", "acc"),
        "blades_auc": cells_of(md["Feature separability (AUC)"], "plain", "auc"),
        "blades_sensitivity": cells_of(md["Sensitivity"], "metric columns", "all"),
    }


def json_cells(table: dict) -> dict[tuple, float]:
    return {(row, column, metric): value for row, cells in table["rows"].items() for column, values in
            (cells or {}).items() for metric, value in values.items() if value is not None}


@pytest.mark.parametrize("name", ["table1", "table2", "table3", "blades_main", "blades_auc", "blades_sensitivity"])
def test_every_value_equals_the_transcribed_table(name):
    printed = expected()[name]
    stored = json_cells(load_reported()["tables"][name])
    assert set(stored) == set(printed), f"{name}: cells differ: {sorted(set(stored) ^ set(printed))[:6]}"
    for key, value in printed.items():
        scale = 1.0 if key[2] == "f_score" else 100.0
        assert math.isclose(stored[key] * scale, value, abs_tol=1e-9), f"{name}{key}: {stored[key]} vs {value}"


def test_the_parser_sees_every_table_and_a_known_value():
    tables = expected()
    assert len(tables["table1"]) == 7 * 10 * 2  # seven methods, nine generators and the mean, Acc and AP
    assert len(tables["table2"]) == 5 * 10
    assert tables["table1"][("ours", "mean", "acc")] == 86.63  # Table I, "Ours", average accuracy
    assert tables["table2"][("EXIF-L2R", "LDM", "auc")] == 83.20
    assert tables["blades_sensitivity"][("BLADES-BC", "all", "f_score")] == 0.91
