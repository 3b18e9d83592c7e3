"""GPU measurements committed with the book: the JSONs that ``tools/gpu_check.py`` wrote on a GPU (chapter 4).

Taught in chapter 4 (``book/04_pretraining.md``, "Running the full profile on a GPU"), whose time and memory tables
show them beside the estimates, and on the book's status page (``tools/book.py``). A measurement is added by
running ``python tools/gpu_check.py --out aigfd_lite/data/gpu_measurements/<gpu>-<date>.json`` on a GPU and
committing the file; smoke runs (``--smoke``) and CPU runs are not measurements and are refused here.

* :func:`gpu_measurements`: every committed measurement, oldest first (an empty list when there is none).
* :func:`label`: "GPU, date, commit" of one measurement, the caption every table and line carries.
* :func:`training_rows`: one row per training configuration measured (images/s, peak GiB beside the estimate).
* :data:`NO_MEASUREMENT`: what the book says where there is none yet.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Union

#: Where measured JSONs are committed (package data, so an installed package sees them too).
MEASUREMENTS_DIR = Path(__file__).resolve().parents[1] / "data" / "gpu_measurements"
#: The sentence shown where no GPU measurement exists.
NO_MEASUREMENT = "no GPU measurement yet: run tools/gpu_check.py on a GPU"
_REQUIRED = ("device", "date", "commit", "smoke", "parts")


def read_measurement(path: Union[str, Path]) -> dict[str, Any]:
    """One measurement JSON, checked: a GPU run (device "cuda", not smoke) with the keys the book shows."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read GPU measurement {path}: {err}") from err
    missing = [k for k in _REQUIRED if not isinstance(data, dict) or k not in data]
    if missing:
        raise ValueError(f"{path} is not a gpu_check result: missing {missing}")
    if data["smoke"] or data["device"].get("type") != "cuda":
        raise ValueError(f"{path} is a smoke or CPU run ({data['device'].get('type')}, smoke={data['smoke']}): "
                         "only measurements on a GPU belong in gpu_measurements/")
    return data


def gpu_measurements(folder: Optional[Union[str, Path]] = None) -> list[dict[str, Any]]:
    """Every ``*.json`` in ``folder`` (default :data:`MEASUREMENTS_DIR`), oldest first; [] when there is none."""
    folder = Path(folder) if folder is not None else MEASUREMENTS_DIR
    found = [read_measurement(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return sorted(found, key=lambda m: m["date"])


def label(measurement: dict[str, Any]) -> str:
    """``"NVIDIA T4, 2026-05-01, commit 0123abc"``: which GPU, when and which code."""
    commit = str(measurement.get("commit") or "unknown")[:10]
    return f"{measurement['device'].get('name', 'GPU')}, {measurement['date'][:10]}, commit {commit}"


def training_rows(measurement: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of parts (a) and (b) that were measured: configuration, images/s, peak and estimated GiB."""
    rows = []
    for part in ("a_training", "b_accumulation"):
        for name, row in (measurement["parts"].get(part, {}).get("results") or {}).items():
            if not isinstance(row, dict) or "images_per_s" not in row:
                continue
            peak, estimate = row.get("peak_allocated_bytes"), row.get("estimate_bytes")
            rows.append({"GPU": label(measurement), "configuration": name,
                         "images/s (measured)": round(row["images_per_s"], 1),
                         "peak GiB (measured)": None if peak is None else round(peak / 2 ** 30, 2),
                         "GiB (estimate)": None if estimate is None else round(estimate / 2 ** 30, 2)})
    return rows


def summary_lines(measurements: Optional[list[dict[str, Any]]] = None) -> list[str]:
    """Markdown lines for the status page: one per measurement and configuration, or :data:`NO_MEASUREMENT`."""
    measurements = gpu_measurements() if measurements is None else measurements
    if not measurements:
        return [f"*{NO_MEASUREMENT}.*"]
    lines = ["| GPU, date, commit | configuration | images/s | peak GiB (measured) | GiB (estimate) |",
             "|---|---|---:|---:|---:|"]
    for m in measurements:
        for r in training_rows(m):
            lines.append(f"| {r['GPU']} | {r['configuration']} | {r['images/s (measured)']} | "
                         f"{r['peak GiB (measured)']} | {r['GiB (estimate)']} |")
    return lines


def _brief(value: Any) -> str:
    """The numbers of one result worth a glance, as ``key=value`` pairs."""
    if not isinstance(value, dict):
        return str(value)
    keys = ("images_per_s", "peak_allocated_bytes", "estimate_bytes", "fit_s", "score_rows_per_s", "backend",
            "step_s_after_first", "bit_exact", "max_abs_difference", "train_s", "mean_auc", "status", "error")
    shown = []
    for key in keys:
        if value.get(key) is None:
            continue
        v = value[key]
        if key.endswith("_bytes"):
            key, v = key.replace("_bytes", "_GiB"), v / 2 ** 30
        shown.append(f"{key}={v:.3g}" if isinstance(v, float) else f"{key}={v}")
    return " ".join(shown)


def result_table(report: dict[str, Any]) -> str:
    """A plain-text table of a gpu_check report: one line per part's result, its status and its key numbers."""
    lines = [f"{report['device'].get('name')} ({report['device'].get('type')}), {report['date']}, commit "
             f"{str(report.get('commit'))[:10]}, smoke={report['smoke']}"]
    for part, result in report["parts"].items():
        lines.append(f"{part}: {result['status']} ({result.get('wall_s', 0):.1f} s of {result.get('budget_s')})")
        if result.get("error"):
            lines.append(f"    error: {result['error'].splitlines()[0][:200]}")
        for name, value in (result.get("results") or {}).items():
            lines.append(f"    {name:28s} {_brief(value)}")
    if report.get("pipeline_over_training") is not None:
        lines.append(f"loader images/s over training images/s: {report['pipeline_over_training']:.2f}")
    return "\n".join(lines)
