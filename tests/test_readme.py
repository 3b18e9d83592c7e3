"""The README's examples of passing parameters, run as written (papermill's command line and tools/book.py, the
path of `make notebooks PARAMS=...`) on chapter 0, the cheapest chapter that declares ``settings``: every way of
passing ``settings`` must arrive as the same settings. And the issue's own full-profile command stops in the
config cell with the message that says where to read how to get the data."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from aigfd_lite import resolve
from conftest import ROOT

PAPERMILL = Path(sys.executable).with_name("papermill")
pytestmark = pytest.mark.slow  # each papermill run starts a kernel: about 6-20 s on 2 busy cores


def readme_commands(prefix: str) -> list[str]:
    """The README's shell lines that start with ``prefix`` and pass ``settings`` (or its file) to chapter 0 or to
    every chapter."""
    lines = (ROOT / "README.md").read_text().splitlines()
    return [line for line in lines if line.startswith(prefix) and ("00_introduction" in line or "settings" in line)]


def env(tmp_path: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "AIGFD_BUILD_DIR": str(tmp_path / "build"),
            "MPLBACKEND": "agg"}


def settings_that_arrived(executed: Path) -> dict:
    """What the executed notebook's parameters (its own, then papermill's injected cell) set ``settings`` to, as
    the config cell's ``resolve`` read it; and the config cell ran without error."""
    cells = json.loads(executed.read_text())["cells"]
    scope: dict = {}
    for cell in cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" in tags or "injected-parameters" in tags:
            exec("".join(cell["source"]), scope)
    config = next(c for c in cells if "cfg = resolve(" in "".join(c["source"]))
    assert not [o for o in config.get("outputs", []) if o.get("output_type") == "error"]
    return scope


def test_readme_has_the_examples():
    assert len(readme_commands(".venv/bin/papermill")) == 3 and len(readme_commands("make notebooks")) == 1


@pytest.mark.parametrize("command", readme_commands(".venv/bin/papermill"), ids=["-p", "-y", "-f"])
def test_papermill_commands_as_written(command, tmp_path):
    argv = shlex.split(command)
    assert argv[0] == ".venv/bin/papermill" and argv[1] == "notebooks/00_introduction.ipynb"
    argv[0], argv[2] = str(PAPERMILL), str(tmp_path / "out.ipynb")
    if "params.yaml" in argv:  # the README's file: settings: {epochs: 1}
        (tmp_path / "params.yaml").write_text("settings: {epochs: 1}\n")
        argv[argv.index("params.yaml")] = str(tmp_path / "params.yaml")
    done = subprocess.run(argv + ["--no-progress-bar"], cwd=ROOT, env=env(tmp_path), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    scope = settings_that_arrived(tmp_path / "out.ipynb")
    assert resolve(scope["profile"], settings=scope["settings"]).epochs == 1


def test_make_notebooks_params_through_tools_book(tmp_path, monkeypatch):
    import book

    make_line = shlex.split(readme_commands("make notebooks")[0])  # as the shell splits it
    params_text = next(a for a in make_line if a.startswith("PARAMS="))[len("PARAMS="):]
    args = shlex.split(params_text)  # as the Makefile's recipe line passes $(PARAMS) to tools/book.py
    assert args[0] == "-p"
    params = {args[i + 1]: book.parse_value(args[i + 2]) for i in range(0, len(args), 3)}
    for key, value in env(tmp_path).items():
        monkeypatch.setenv(key, value)
    book.execute(["00_introduction"], params, "python3", build=tmp_path / "build")
    scope = settings_that_arrived(tmp_path / "build" / "executed" / "00_introduction.ipynb")
    assert resolve(scope["profile"], settings=scope["settings"]).epochs == 1


def test_the_full_profile_without_data_stops_in_the_config_cell_with_one_clear_message(tmp_path):
    out = tmp_path / "out.ipynb"
    argv = [str(PAPERMILL), "notebooks/05_detector.ipynb", str(out), "-p", "profile", "full", "--no-progress-bar"]
    done = subprocess.run(argv, cwd=ROOT, env=env(tmp_path), capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    cells = json.loads(out.read_text())["cells"]
    failed = [c for c in cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert len(failed) == 1 and "cfg = resolve(" in "".join(failed[0]["source"])  # the config cell, no later one
    error = next(o for o in failed[0]["outputs"] if o["output_type"] == "error")
    assert error["ename"] == "MissingDataError"
    assert re.match(r"the full profile needs data_root: the folder that holds the paper's data", error["evalue"])
    assert "Getting the paper's data" in error["evalue"]
