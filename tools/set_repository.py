"""The repository the book installs from and links to, written in one place: ``_config.yml``'s ``repository``.

    python tools/set_repository.py                       # check: every chapter's install cell agrees with _config.yml
    python tools/set_repository.py URL [--branch BRANCH]  # point the book at a fork: _config.yml + every chapter

``_config.yml`` (``repository.url`` and ``repository.branch``) is the one place: the Colab button is built from it,
and each chapter's hidden Colab cell must install ``git+<url>@<branch>`` (a notebook cannot read the config before
the package is installed, so the cells carry a copy). Setting a new URL rewrites ``_config.yml`` and the install
line of every ``book/NN_*.md``, then re-pairs the notebooks with jupytext. ``tests/test_notebooks.py`` checks that
they agree.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
#: The install target in a Colab cell: git+<url>@<branch>.
INSTALL = re.compile(r"git\+(?P<url>https://[^\s\"'@]+?)@(?P<branch>[\w.\-/]+)")


def repository(root: Path = ROOT) -> tuple[str, str]:
    """(url, branch) from ``_config.yml``."""
    repo = yaml.safe_load((root / "_config.yml").read_text())["repository"]
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def install_targets(text: str) -> set[tuple[str, str]]:
    return {(m["url"], m["branch"]) for m in INSTALL.finditer(text)}


def disagreements(root: Path = ROOT) -> list[str]:
    """Chapters whose install cell does not install from ``_config.yml``'s repository and branch."""
    want = repository(root)
    bad = []
    for md in sorted((root / "book").glob("[0-9][0-9]_*.md")):
        targets = install_targets(md.read_text())
        if targets != {want}:
            bad.append(f"{md.name}: installs from {sorted(targets) or 'nowhere'}, _config.yml says {want}")
    return bad


def set_repository(url: str, branch: str, root: Path = ROOT) -> list[Path]:
    """Write ``url`` / ``branch`` into ``_config.yml`` (only those two lines change) and every chapter's install
    line; returns the chapters changed."""
    if not re.fullmatch(r"https://[^\s\"'@]+", url):
        raise ValueError(f"{url!r} is not an https URL of a repository")
    url = url.rstrip("/").removesuffix(".git")
    config = root / "_config.yml"
    text = config.read_text()
    text, n_url = re.subn(r"(?m)^(\s+url:\s*)\S+$", rf"\g<1>{url}", text, count=1)
    text, n_branch = re.subn(r"(?m)^(\s+branch:\s*)\S+$", rf"\g<1>{branch}", text, count=1)
    if not (n_url and n_branch):
        raise ValueError(f"{config}: no repository url/branch lines to rewrite")
    config.write_text(text)
    changed = []
    for md in sorted((root / "book").glob("[0-9][0-9]_*.md")):
        old = md.read_text()
        new = INSTALL.sub(f"git+{url}@{branch}", old)
        if new != old:
            md.write_text(new)
            changed.append(md)
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="e.g. https://github.com/you/aigfd-lite")
    parser.add_argument("--branch", default=None, help="default: the branch in _config.yml")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--no-sync", action="store_true", help="do not re-pair the notebooks (jupytext --sync)")
    args = parser.parse_args(argv)
    if args.url:
        changed = set_repository(args.url, args.branch or repository(args.root)[1], args.root)
        if changed and not args.no_sync:
            subprocess.run([sys.executable, "-m", "jupytext", "--sync", *map(str, changed)], check=True)
        print(f"repository: {repository(args.root)}; {len(changed)} chapter(s) rewritten")
    bad = disagreements(args.root)
    for line in bad:
        print(line, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
