"""Forked processes stay usable: a child forked after torch ran runs torch on one intra-op thread.

Why: torch's CPU wheels run their intra-op parallelism on GNU OpenMP (``libgomp``), which is not fork-safe. Once a
process has run a parallel torch operation (building and resetting an env trains the reward model), libgomp keeps a
team of worker threads; a forked child inherits the team's bookkeeping but not its threads, and its first parallel
region waits on them forever (a futex). Gymnasium's ``AsyncVectorEnv`` forks its workers by default on Linux, so
``gymnasium.make_vec(..., vectorization_mode="async")`` after a first env hung (pytorch/pytorch#17199, #41197).

With one thread libgomp runs each parallel region inline and never touches the stale team, so the child
(:func:`_one_torch_thread`, run by ``os.register_at_fork`` in every child forked after ``activeuf_env`` is imported)
is safe. PyTorch's own ``DataLoader`` workers make the same choice. Results in such a child equal those of a process
running torch with ``torch.set_num_threads(1)``; they can differ from a multi-threaded run in the last bits of
float sums (3e-12 on a tiny synthetic episode), as runs on different thread counts always can. A forked child must
not raise the thread count again (that hangs); for workers with several torch threads each, use the ``spawn``
context (``vector_kwargs={"context": "spawn"}``).
"""

from __future__ import annotations

import os
import sys

__all__ = ["install"]


def _one_torch_thread() -> None:
    torch = sys.modules.get("torch")
    if torch is not None:  # no torch in the parent, no OpenMP team to inherit
        torch.set_num_threads(1)


def install() -> None:
    """Register :func:`_one_torch_thread` to run in every child forked from now on (the package calls it once)."""
    if hasattr(os, "register_at_fork"):  # Windows has no fork
        os.register_at_fork(after_in_child=_one_torch_thread)
