import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository; tests import it: `from conftest import ROOT`
FIXTURES = ROOT / "tests" / "fixtures"
sys.path.insert(0, str(ROOT / "tools"))  # tools/book.py is importable as `book`
# tests/ mirrors aigfd_lite/ (tests/train/ tests aigfd_lite/train/, ...). Test files share helpers by module name
# across folders (`from test_train import tiny_config`), so every folder is on the path and basenames are unique
# (test_layout.py checks); pytest's default import mode then needs no __init__.py.
TEST_FOLDERS = sorted(d for d in (ROOT / "tests").iterdir() if d.is_dir()
                      and any(d.glob("test_*.py")))
sys.path[1:1] = [str(d) for d in TEST_FOLDERS]
