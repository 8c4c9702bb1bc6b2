"""The check for the ``bench`` extra (pandas, matplotlib, tqdm, scipy), shared by the benchmark and the plots.

The runner's modules import none of these at import time; a function that needs them calls
:func:`require_bench_extra` first, so a missing extra is one clear message instead of an ``ImportError`` from deep
inside pandas or matplotlib.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

__all__ = ["BENCH_MODULES", "require_bench_extra"]

BENCH_MODULES: tuple[str, ...] = ("pandas", "matplotlib", "tqdm")
"""The modules a benchmark run needs (tables, plots, progress bar)."""


def require_bench_extra(modules: Iterable[str] = BENCH_MODULES) -> None:
    """Check that the ``bench`` extra is installed.

    Args:
        modules: the modules to look for.

    Raises:
        ImportError: naming the missing modules and ``pip install activeuf-env[bench]``.

    Example:
        >>> require_bench_extra(["numpy"])
        >>> require_bench_extra(["no_such_module_xyz"])
        Traceback (most recent call last):
        ...
        ImportError: the benchmark needs no_such_module_xyz (the bench extra): pip install activeuf-env[bench]
    """
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            f"the benchmark needs {', '.join(missing)} (the bench extra): pip install activeuf-env[bench]"
        )
