"""Imports inside functions are for optional or heavy dependencies only, and each says why: a comment on its line or
on the line above (for a block of imports, above the block or on its first line). Everything else is imported at the
top of its module, where ``tests/test_import_graph.py`` sees the package's layering at a glance.

``python tests/test_function_imports.py`` lists the imports inside functions without a reason.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "aigfd_lite"  # also run as a script, without conftest


def _comment(line: str) -> bool:
    return "#" in line and not line.lstrip().startswith(("'", '"'))


def unexplained(root: Path = PACKAGE) -> list[str]:
    """``path:line statement`` for each import inside a function without a reason comment."""
    found = []
    for path in sorted(root.rglob("*.py")):
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines), str(path))
        explained: set[int] = set()   # lines of imports that carry (or inherit) a reason

        def visit(node, inside):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    visit(child, True)
                elif isinstance(child, (ast.Import, ast.ImportFrom)) and inside:
                    first = child.lineno
                    above = lines[first - 2].strip() if first > 1 else ""
                    own = any(_comment(line) for line in lines[first - 1:child.end_lineno])
                    if own or above.startswith("#") or (first - 1) in explained:
                        explained.add(child.end_lineno)
                    else:
                        found.append(f"{path.relative_to(root.parent)}:{first} {lines[first - 1].strip()}")
                else:
                    visit(child, inside)

        visit(tree, False)
    return found


def test_every_import_inside_a_function_says_why():
    left = unexplained()
    assert left == [], "imports inside functions without a reason comment (move them to the top, or say why):\n" + \
        "\n".join(left)


def test_the_check_sees_a_bare_import_and_accepts_reasons(tmp_path):
    package = tmp_path / "aigfd_lite"
    package.mkdir()
    (package / "m.py").write_text(
        "import os\n\n\ndef f():\n    import json\n\n\ndef g():\n    import dlib  # optional: the HOG detector\n"
        "    import scipy\n\n\ndef h():\n    # torch only for the fast backend\n    import torch\n"
        "    x = 1\n    from . import n\n")
    assert unexplained(package) == ["aigfd_lite/m.py:5 import json", "aigfd_lite/m.py:17 from . import n"]


if __name__ == "__main__":
    print("\n".join(unexplained()) or "every import inside a function says why")
