"""Progress bars that leave no debris in executed notebooks (every long loop of the package and chapters 1 and 3).

``tqdm.auto`` draws a widget in Jupyter, which needs ``ipywidgets``; without it tqdm warns ("TqdmWarning: IProgress
not found") and falls back to a text bar whose carriage-return updates are saved into the executed notebook, where
the rendered book shows them as debris. :func:`progress_bar` chooses instead:

* in a Jupyter kernel with ``ipywidgets`` installed (Colab, a full Jupyter install): tqdm's widget bar;
* in a Jupyter kernel without it (the pinned book build, papermill): no bar, no warning;
* anywhere else (a terminal, a log file, ``python -m aigfd_lite.train``): tqdm's text bar.
"""
from __future__ import annotations

import importlib.util
from typing import Any, Iterable, Optional


def in_notebook() -> bool:
    """True inside a Jupyter kernel (papermill included), False in a terminal or plain Python."""
    try:
        # imported here, not at the top: `import aigfd_lite.blades` stays free of IPython (only in a kernel)
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def widgets_available() -> bool:
    """Whether ipywidgets can be imported (tqdm's notebook bar needs it)."""
    return importlib.util.find_spec("ipywidgets") is not None


def progress_bar(iterable: Optional[Iterable] = None, *, disable: bool = False, **kwargs: Any):
    """A ``tqdm`` bar over ``iterable`` (or a manual one with ``total=``), chosen as the module docstring says."""
    if in_notebook():
        if widgets_available():
            # imported here, not at the top: `import aigfd_lite.blades` stays free of tqdm
            from tqdm.notebook import tqdm
        else:
            # imported here, not at the top: `import aigfd_lite.blades` stays free of tqdm
            from tqdm import tqdm

            disable = True
    else:
        # imported here, not at the top: `import aigfd_lite.blades` stays free of tqdm
        from tqdm import tqdm
    return tqdm(iterable, disable=disable, **kwargs)
