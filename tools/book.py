"""Execute the book's notebooks with papermill and stage the executed copies for jupyter-book.

    python tools/book.py execute [--only STEM ...] [-p NAME VALUE ...]   # into _build/executed/, in _toc order
    python tools/book.py stage                                          # _build/stage/: the book to render

Executed copies never overwrite the paired notebooks in notebooks/. Each run's wall time goes to
_build/results/_timings.json, which the status page reads. A failing notebook stops the run with a message
naming the notebook and the cell.
"""
from __future__ import annotations

import argparse
import ast
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
EXECUTED = BUILD / "executed"
RESULTS = BUILD / "results"
STAGE = BUILD / "stage"
# Packages whose versions the status page lists.
VERSIONED = ["aigfd-lite", "torch", "torchvision", "numpy", "scipy", "scikit-learn", "scikit-image", "pandas",
             "matplotlib", "seaborn", "dlib-bin", "face-alignment", "jupyter-book", "jupytext", "papermill"]


# Pages that read other chapters' results (chapter 0 quotes chapter 6's measured transfer): executed after the
# rest, so a full build shows the measurement and not a forward reference. Reading order is unchanged.
EXECUTED_LAST = ["00_introduction"]


def toc_stems() -> list[str]:
    """Every page of _toc.yml, in reading order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    stems = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                stems.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return stems


def paired(stem: str) -> bool:
    """A book page that is paired with a notebook (generated pages such as the status page are not)."""
    return (ROOT / "notebooks" / f"{stem}.ipynb").is_file()


def _parameters_cell(notebook: Path) -> ast.Module:
    """The parsed source of the notebook's cell tagged ``parameters``."""
    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return ast.parse("".join(cell["source"]))
    raise SystemExit(f"{notebook.relative_to(ROOT)} has no cell tagged 'parameters'")


def declared_parameters(notebook: Path) -> set[str]:
    """Names assigned in the notebook's cell tagged ``parameters``."""
    return {t.id for node in _parameters_cell(notebook).body if isinstance(node, ast.Assign) for t in node.targets
            if isinstance(t, ast.Name)}


def parameter_defaults(notebook: Path) -> dict:
    """The literal values (numbers, strings, booleans, None, plain containers) the notebook's ``parameters`` cell
    assigns; names assigned anything else are left out."""
    defaults = {}
    for node in _parameters_cell(notebook).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                defaults[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return defaults


def to_inject(params: dict, declared: set[str], defaults: dict) -> dict:
    """The parameters papermill should inject into one notebook: those it declares, minus those equal to its own
    default (so the book built with the defaults shows no injected "# Parameters" cell repeating them)."""
    return {k: v for k, v in params.items() if k in declared and not (k in defaults and defaults[k] == v
                                                                       and type(defaults[k]) is type(v))}


def parse_value(text: str):
    """papermill-style -p values: numbers and booleans become Python values, anything else stays a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children (the notebook's kernel, once papermill
    has shut it down and waited for it, and every process the kernel started)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def record_timing(path: Path, stem: str, entry: dict) -> None:
    """Add one notebook's timing to ``path`` under a lock (the rehearsal runs two notebooks at a time)."""
    import fcntl

    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        timings = json.loads(path.read_text()) if path.is_file() else {}
        timings[stem] = entry
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(timings, indent=2, sort_keys=True))
        os.replace(tmp, path)


def execute(only: list[str], params: dict, kernel: str, build: Path = BUILD) -> None:
    """Execute the chosen notebooks (all: ``only`` empty) with ``params`` into ``build/executed``; results and
    checkpoints go under ``build`` too (``$AIGFD_BUILD_DIR``), so a rehearsal never mixes with the book's build."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    stems = [s for s in toc_stems() if paired(s)]
    unknown_only = sorted(set(only) - set(stems))
    if unknown_only:
        raise SystemExit(f"unknown notebook(s) {unknown_only}; the book's notebooks are {stems}")
    chosen = [s for s in stems if not only or s in only]
    chosen = [s for s in chosen if s not in EXECUTED_LAST] + [s for s in chosen if s in EXECUTED_LAST]
    declared = {s: declared_parameters(ROOT / "notebooks" / f"{s}.ipynb") for s in chosen}
    everywhere = set().union(*declared.values()) if declared else set()
    unknown = sorted(set(params) - everywhere)
    if unknown:
        raise SystemExit(f"unknown parameter(s) {unknown}: no notebook declares them (declared: {sorted(everywhere)})")

    executed, results = build / "executed", build / "results"
    executed.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    timings_path = results / "_timings.json"
    os.environ["AIGFD_BUILD_DIR"] = str(build)
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    for stem in chosen:
        source = ROOT / "notebooks" / f"{stem}.ipynb"
        output = executed / f"{stem}.ipynb"
        mine = to_inject(params, declared[stem], parameter_defaults(source))
        print(f"[book] executing notebooks/{stem}.ipynb {mine or ''}", flush=True)
        start, cpu_start = time.perf_counter(), cpu_seconds()
        try:
            pm.execute_notebook(str(source), str(output), parameters=mine, kernel_name=kernel, cwd=str(ROOT / "notebooks"),
                                progress_bar=False)
        except PapermillExecutionError as err:
            raise SystemExit(
                f"\n[book] FAILED: notebooks/{stem}.ipynb, cell {err.cell_index} (execution count {err.exec_count}): "
                f"{err.ename}: {err.evalue}\n[book] the executed copy with the traceback is {output.relative_to(ROOT)}"
            ) from None
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
        record_timing(timings_path, stem, {"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
                                           "parameters": mine,
                                           "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        print(f"[book] {stem}: {seconds:.1f} s ({cpu:.1f} s of CPU: {cpu / seconds:.2f} cores busy)", flush=True)


def _format_value(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.1e}"
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value).replace("|", "\\|")


def headline_section(stems: list[str]) -> list[str]:
    """The headline numbers each notebook saved (``save_results(..., headline=...)``), read from _build/results/."""
    lines = ["## Headline numbers", "",
             "Measured by the notebooks of this build, in the profile of each row; they are not the paper's numbers",
             "(chapter 6 puts those beside ours).", "",
             "| notebook | profile | measured | value |", "|---|---|---|---:|"]
    for stem in stems:
        res = RESULTS / f"{stem}.json"
        if not paired(stem) or not res.is_file():
            continue
        data = json.loads(res.read_text())
        headline = data.get("headline") or []
        # [label, value] pairs; a results file written before headlines were ordered holds a mapping
        for label, value in headline.items() if isinstance(headline, dict) else headline:
            lines.append(f"| {stem} | {data.get('profile', '?')} | {_format_value(label)} | {_format_value(value)} |")
    return lines + [""]


def gpu_section() -> list[str]:
    """The GPU measurements committed under aigfd_lite/data/gpu_measurements/ (tools/gpu_check.py), or a sentence."""
    from aigfd_lite.train.measurements import summary_lines

    return ["## Measured on a GPU", "", "Training step of the full profile (chapter 4), measured by",
            "`tools/gpu_check.py` on the GPU, date and commit of each row, beside aigfd_lite.train.gpu_memory's estimate.",
            "", *summary_lines(), ""]


def status_page(stems: list[str]) -> str:
    timings_path = RESULTS / "_timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    lines = ["# Build status", "",
             "Generated by `tools/book.py stage` from `_build/results/`: the wall time of each notebook in the last",
             "papermill run, the profile it ran with, and the package versions of the environment that built this book.",
             "", "| notebook | profile | run time (s) | finished (UTC) |", "|---|---|---:|---|"]
    total = 0.0
    for stem in stems:
        if not paired(stem):
            continue
        t = timings.get(stem, {})
        res = RESULTS / f"{stem}.json"
        profile = json.loads(res.read_text()).get("profile", "?") if res.is_file() else "no results"
        seconds = t.get("seconds")
        total += seconds or 0.0
        lines.append(f"| {stem} | {profile} | {seconds if seconds is not None else 'not run'} | {t.get('finished_at', '')} |")
    lines += [f"| **total** | | {total:.1f} | |", ""]
    lines += headline_section(stems) + gpu_section()
    lines += ["## Package versions", "", "| package | version |", "|---|---|", f"| python | {platform.python_version()} |"]
    for name in VERSIONED:
        try:
            lines.append(f"| {name} | {importlib.metadata.version(name)} |")
        except importlib.metadata.PackageNotFoundError:
            lines.append(f"| {name} | not installed |")
    return "\n".join(lines) + "\n"


def stage() -> None:
    """Lay out _build/stage: config, toc, the executed notebooks in place of the paired .md files, other pages."""
    stems = toc_stems()
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    for name in ["_config.yml", "_toc.yml"]:
        shutil.copy(ROOT / name, STAGE / name)
    for extra in (ROOT / "book").iterdir():
        if extra.suffix not in {".md", ".ipynb"}:
            (shutil.copytree if extra.is_dir() else shutil.copy)(extra, STAGE / extra.name)
    missing = []
    for stem in stems:
        if stem == "status":
            (STAGE / "status.md").write_text(status_page(stems))
        elif paired(stem):
            executed = EXECUTED / f"{stem}.ipynb"
            if not executed.is_file():
                missing.append(stem)
                continue
            shutil.copy(executed, STAGE / f"{stem}.ipynb")
        else:
            shutil.copy(ROOT / "book" / f"{stem}.md", STAGE / f"{stem}.md")
    if missing:
        raise SystemExit(f"[book] not executed yet: {missing}; run `make notebooks` first")
    print(f"[book] staged {len(stems)} pages in {STAGE.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("execute", help="execute notebooks with papermill into _build/executed/")
    run.add_argument("--only", nargs="*", default=[], help="notebook stems to run (default: all, in _toc order)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    run.add_argument("--kernel", default="python3")
    sub.add_parser("stage", help="stage the executed notebooks for jupyter-book in _build/stage/")
    args = parser.parse_args(argv)
    if args.command == "execute":
        execute(args.only, {k: parse_value(v) for k, v in args.parameter}, args.kernel)
    else:
        stage()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
