"""tests/ mirrors the package: a test of ``aigfd_lite/<sub>/`` lives in ``tests/<sub>/``, a test of a module directly
in the package (and of the book, tools/ and the repository) directly in ``tests/``; basenames are unique, since test
files import each other's helpers by module name (see conftest.py)."""
from collections import Counter

from conftest import ROOT

TESTS = ROOT / "tests"


def test_every_test_folder_is_a_sub_package():
    folders = {d.name for d in TESTS.iterdir() if d.is_dir() and any(d.glob("*.py"))}
    folders -= {"fixtures"}  # conftest.FIXTURES: test data and helpers shared across folders, no tests
    packages = {d.name for d in (ROOT / "aigfd_lite").iterdir() if (d / "__init__.py").is_file()}
    assert folders <= packages, f"test folders without a sub-package: {sorted(folders - packages)}"


def test_test_file_names_are_unique():
    names = Counter(p.name for p in TESTS.rglob("*.py") if p.name != "__init__.py")
    assert [n for n, k in names.items() if k > 1] == []
