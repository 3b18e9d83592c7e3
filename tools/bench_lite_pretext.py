"""Search for a lite pretraining setting that learns both pretext tasks (chapter 4), on a validation split.

Nothing here looks at the corpus's held-out ``test`` faces: the ``train`` faces are split by photo (faces of one
photo stay together, as in the corpus's own train/test split) into a fitting part and a validation part
(``--val-fraction``, seeded). Each candidate setting (backbone, init, input size, epochs, learning rate,
manipulation loss) trains on the fitting part with :func:`aigfd_lite.train.train` and is scored on the validation
faces with :func:`aigfd_lite.pretext.evaluate_pretext` (each face real + once per manipulation) and face-level
bootstrap intervals. Wall and CPU seconds (user + system of this process, all threads) of each training run are
recorded. One row per run is appended to ``--csv``, so candidates can run in separate processes; ``--table`` prints
the table of every row so far and the choice the rule below makes:

    among the settings run on the most seeds whose every run has every EXIF head's validation lower bound above
    0.5, the highest mean validation manipulation balanced accuracy over its seeds (ties: fewer CPU seconds).

``--seeds`` reruns candidates with other seeds: a seed draws the validation split *and* the training's randomness,
so the spread over seeds is the spread a reader should expect from one validation score (46 faces).

Only rows rendered by the current camera simulator (``camera_simulator`` = ``aigfd_lite.camera.SIMULATOR_VERSION``)
take part in the choice; older rows stay in the table for the record.

``--ablations E1 E2 ...`` trains, at the chosen (or ``--candidate``) setting, the two Table III ablations of
chapter 6 (EXIF only, manipulation only) for those epoch counts, to choose ``ablation_epochs``.

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python tools/bench_lite_pretext.py --candidates base bce lr3e-4
    PYTHONPATH=$PWD .venv/bin/python tools/bench_lite_pretext.py --table
"""
from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from aigfd_lite import resolve
from aigfd_lite.camera.simulator import SIMULATOR_VERSION
from aigfd_lite.faces.corpus import build_corpus
from aigfd_lite.models.network import TAGS
from aigfd_lite.pretext.batches import PretextDataset, bootstrap_intervals, evaluate_pretext, tags_of
from aigfd_lite.results import write_json_atomic
from aigfd_lite.train.loop import TrainConfig, train

#: The starting point (the previous session's probe), then one change at a time.
BASE = dict(backbone="mobilenet_v2", init="imagenet", input_size=128, epochs=40, lr=1e-4, batch_size=32)
CANDIDATES: dict[str, dict] = {
    "resnet50-random-64": dict(backbone="resnet50", init="random", input_size=64, epochs=60, lr=5e-4),  # old lite
    "base": {},
    "bce": dict(manipulation_form="bce"),
    "lr3e-4": dict(lr=3e-4),
    "lr3e-4-bce": dict(lr=3e-4, manipulation_form="bce"),
    "ep20": dict(epochs=20),
    "ep20-lr3e-4": dict(epochs=20, lr=3e-4),
    "ep60": dict(epochs=60),
    "ep60-lr3e-4": dict(epochs=60, lr=3e-4),
    "px160": dict(input_size=160),
    "px96-ep60": dict(input_size=96, epochs=60),
    "variants4": dict(variants_per_kind=4),
    "fresh": dict(variants_per_kind=None),
    "random-init": dict(init="random", lr=3e-4),
    "lr3e-4-aug": dict(lr=3e-4, augment="flip-shift"),
}
RULE = ("among the settings run on the most seeds (each seed draws its own validation split) whose every run has "
        "every EXIF head's validation lower bound above 0.5, the highest mean validation manipulation balanced "
        "accuracy over its seeds (ties: fewer CPU seconds)")
METRICS = [f"ranking_accuracy_{t}" for t in TAGS] + ["manipulation_balanced_accuracy"]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def split_train_faces(table: pd.DataFrame, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fit, validation) of the train faces, whole photos to one side (seeded)."""
    photo = (table["source"].astype(str) + "/" + table["file"].astype(str)).to_numpy()
    groups = np.unique(photo)
    rng = np.random.default_rng(seed)
    rng.shuffle(groups)
    val_groups, n_val = set(), 0
    for g in groups:
        if n_val >= val_fraction * len(table):
            break
        val_groups.add(g)
        n_val += int((photo == g).sum())
    is_val = np.array([p in val_groups for p in photo])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def datasets(cfg, tcfg: TrainConfig, val_fraction: float) -> tuple[PretextDataset, PretextDataset]:
    part = build_corpus(cfg, progress=False).subset("train")
    tags, has = tags_of(part.table)
    fit, val = split_train_faces(part.table, val_fraction, cfg.seed)

    def make(idx: np.ndarray, schedule: str, variants) -> PretextDataset:
        return PretextDataset(part.images[idx], part.landmarks[idx], tags[idx], has[idx], seed=tcfg.seed,
                              input_size=tcfg.input_size, real_fraction=tcfg.real_fraction,
                              simulate_camera=tcfg.simulate_camera, symmetric=tcfg.symmetric_resampling,
                              schedule=schedule, variants_per_kind=variants)

    return make(fit, "random", tcfg.variants_per_kind), make(val, "every_kind", None)


def run(name: str, overrides: dict, tasks: tuple[str, ...], val_fraction: float, seed: int) -> dict:
    cfg = resolve("lite", seed=seed)
    tcfg = TrainConfig.from_profile(cfg, tasks=tasks, **{**BASE, **overrides})
    fit_set, val_set = datasets(cfg, tcfg, val_fraction)
    with tempfile.TemporaryDirectory(prefix="bench-pretext-") as tmp:
        wall, cpu = time.perf_counter(), cpu_seconds()
        model, log = train(tcfg, Path(tmp), dataset=fit_set, progress=False)
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    result = evaluate_pretext(model, val_set, progress=False)
    intervals = bootstrap_intervals(result, n_resamples=300, seed=seed).set_index("metric")
    row = {"name": name, "tasks": "+".join(tasks), "seed": seed, "camera_simulator": SIMULATOR_VERSION,
           **{k: v for k, v in {**BASE, **overrides}.items()},
           "manipulation_form": tcfg.manipulation_form, "variants_per_kind": tcfg.variants_per_kind,
           "fit_faces": len(fit_set.images), "val_faces": len(val_set.images), "steps": len(log),
           "train_wall_s": round(wall, 1), "train_cpu_s": round(cpu, 1),
           "manip_auc": round(result["manipulation_auc"], 3),
           "real_acc": round(result["manipulation_accuracy_real"], 3)}
    for metric in METRICS:
        short = metric.replace("ranking_accuracy_", "").replace("manipulation_balanced_accuracy", "manip")
        row[short] = round(float(intervals.loc[metric, "value"]), 3)
        row[f"{short}_low"] = round(float(intervals.loc[metric, "low"]), 3)
    return row


def current(table: pd.DataFrame) -> pd.DataFrame:
    """The rows trained on this camera simulator's renderings (rows before the column existed are version 1)."""
    version = table["camera_simulator"] if "camera_simulator" in table else pd.Series(1, index=table.index)
    return table[version.fillna(1).astype(int) == SIMULATOR_VERSION]


def settings(table: pd.DataFrame) -> pd.DataFrame:
    """One row per setting of the current simulator's both-task runs: seeds run, whether every run's EXIF heads
    are above chance, and the mean (min, max) validation manipulation balanced accuracy and CPU seconds."""
    both = current(table)
    both = both[both["tasks"] == "exif+manipulation"]
    ok = (both[[f"{t}_low" for t in TAGS]] > 0.5).all(axis=1)
    return both.assign(ok=ok).groupby("name").agg(
        seeds=("seed", "nunique"), ok=("ok", "all"), manip=("manip", "mean"), manip_min=("manip", "min"),
        manip_max=("manip", "max"), real_acc=("real_acc", "mean"), train_cpu_s=("train_cpu_s", "mean"))


def choose(table: pd.DataFrame) -> pd.Series | None:
    """The setting :data:`RULE` picks (a row of :func:`settings`, with its name), or None."""
    per = settings(table)
    per = per[per["ok"]]
    if per.empty:
        return None
    per = per[per["seeds"] == per["seeds"].max()]
    return per.sort_values(["manip", "train_cpu_s"], ascending=[False, True]).reset_index().iloc[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", nargs="*", default=[], help=f"names from {sorted(CANDIDATES)}")
    parser.add_argument("--candidate", default=None, help="the setting of the --ablations runs (default: chosen)")
    parser.add_argument("--ablations", nargs="*", type=int, default=[], help="epoch counts of the ablation runs")
    parser.add_argument("--seeds", nargs="*", type=int, default=[42])
    parser.add_argument("--val-fraction", type=float, default=0.25)
    parser.add_argument("--csv", default="_build/bench/lite_pretext.csv",
                        help="rows are appended here; --table reads every lite_pretext*.csv beside it")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--table", action="store_true", help="print every recorded row and the choice")
    parser.add_argument("--export", default=None, metavar="JSON",
                        help="write every recorded row, the rule and the choice (chapter 4 reads "
                             "aigfd_lite/data/lite_pretext_search.json)")
    args = parser.parse_args()
    out = Path(args.csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)

    def recorded() -> pd.DataFrame:
        return pd.concat([pd.read_csv(p) for p in sorted(out.parent.glob("lite_pretext*.csv"))], ignore_index=True)

    def record(row: dict) -> None:
        print(pd.Series(row).to_string(), flush=True)
        old = pd.read_csv(out) if out.is_file() else pd.DataFrame()
        pd.concat([old, pd.DataFrame([row])], ignore_index=True).to_csv(out, index=False)

    for seed in args.seeds:
        for name in args.candidates:
            record(run(name, CANDIDATES[name], ("exif", "manipulation"), args.val_fraction, seed))
    if args.ablations:
        table = recorded()
        name = args.candidate or choose(table)["name"]
        for epochs in args.ablations:
            for tasks in (("exif",), ("manipulation",)):
                record(run(f"{name}/ablation-ep{epochs}", {**CANDIDATES[name], "epochs": epochs}, tasks,
                           args.val_fraction, args.seeds[0]))
    if args.table:
        table = recorded()
        columns = ["name", "camera_simulator", "tasks", "seed", "steps", "train_wall_s", "train_cpu_s", "manip",
                   "manip_low", "manip_auc", "real_acc", *[c for t in TAGS for c in (t, f"{t}_low")]]
        with pd.option_context("display.width", 250, "display.max_columns", 30):
            print(table[columns].to_string(index=False))
        with pd.option_context("display.width", 250):
            print("\n", settings(table).round(3).to_string())
        chosen = choose(table)
        print("\nchosen (validation):", None if chosen is None else chosen["name"])
    if args.export:
        table = recorded()
        chosen = choose(table)
        write_json_atomic(Path(args.export), {
            "what": "lite pretraining settings scored on a validation split of the train faces (never the test "
                    "faces); written by tools/bench_lite_pretext.py",
            "rule": RULE, "val_fraction": args.val_fraction, "base": BASE,
            "chosen": None if chosen is None else chosen["name"],
            "camera_simulator": SIMULATOR_VERSION,
            "not_run": sorted(set(CANDIDATES) - set(current(table)["name"])),
            "rows": json.loads(table.to_json(orient="records"))})


if __name__ == "__main__":
    main()
