"""Text rendering of one prompt's responses for ``render_mode="ansi"``."""

from __future__ import annotations

import numpy as np

from activeuf_env.core.pool import ResponsePool
from activeuf_env.envs.episode import Episode

__all__ = ["render_prompt_table"]

_SNIPPET = 60
"""Characters of a response shown per row (whitespace collapsed, the rest replaced by an ellipsis)."""
_PROMPT_SNIPPET = 100
"""Characters of the prompt shown above the table."""
_MODEL_WIDTH = (8, 32)
"""Bounds of the model column's width: as wide as the longest name shown, within these bounds."""


def _snippet(text: str, width: int = _SNIPPET) -> str:
    """``text`` on one line, at most ``width`` characters (an ellipsis marks a cut; an empty text says so).

    Example:
        >>> _snippet("Hello,\\n\\n  world. " + "x" * 80, 20)
        'Hello, world. xxxxx…'
        >>> _snippet("   ")
        '(empty)'
    """
    flat = " ".join(text.split())
    if not flat:
        return "(empty)"
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def render_prompt_table(pool: ResponsePool, episode: Episode, batch_size: int) -> str:
    """A readable table of one prompt: each response's model, μ ± s, and the pair picked last round with its verdict.

    Shows the first prompt of the last round that got a label (or, before the first step, the first prompt of the
    current batch). When the pool has texts (real data), the prompt's first 100 characters and each response's
    first 60 appear, on one line each (whitespace collapsed, an ellipsis marking a cut, ``(empty)`` for an empty
    response); model names are cut at 32 characters. Padded response slots are not listed.
    """
    last = episode.last
    if last is None:
        assert episode.observation is not None
        observation, prompts = episode.observation, episode.order[episode.round]
        row, pair, verdict = 0, None, None
        header = f"round {episode.round} (before any label)"
    else:
        observation, prompts = last.observation, last.prompts
        labelled = last.sent[last.keep]
        row = int(labelled[0]) if labelled.size else 0
        pair = tuple(int(x) for x in last.pairs[row]) if labelled.size else None
        verdict = bool(last.verdict[last.keep][0]) if labelled.size else None
        header = f"round {episode.round - 1} of {episode.n_rounds}, {last.round_labels} labels this round"
    prompt = int(prompts[row])
    if prompt < 0:
        return header + ": no prompt left\n"
    counts = episode.counts
    lines = [
        header,
        f"prompt {pool.prompt_ids[prompt]!r} (batch row {row} of {batch_size}); labels so far {counts.labels}, "
        f"judge calls {counts.judge_calls}",
    ]
    if pool.texts is not None:
        lines.append(f"  > {_snippet(pool.texts.prompts[prompt], _PROMPT_SNIPPET)}")
    mean, lower, upper = observation["mean"][row], observation["lower"][row], observation["upper"][row]
    spread = (upper - lower) / 2.0
    shown = np.flatnonzero(pool.valid[prompt])
    names = [pool.model_names[pool.model_ids[prompt, k]] for k in shown]
    width = min(max(_MODEL_WIDTH[0], *(len(n) for n in names)), _MODEL_WIDTH[1])
    lines.append(
        f"{'idx':>4} {'model':<{width}} {'μ':>8} {'± s':>7}  {'pair':<8}" + ("  response" if pool.texts else "")
    )
    for k, name in zip(shown.tolist(), names, strict=True):
        mark = ""
        if pair is not None and k in pair:
            chosen = pair[0] if verdict else pair[1]
            mark = "chosen" if k == chosen else "rejected"
        text = f"  {_snippet(pool.texts.responses[prompt][k])}" if pool.texts else ""
        lines.append(f"{k:>4} {_snippet(name, width):<{width}} {mean[k]:>8.3f} {spread[k]:>7.3f}  {mark:<8}{text}")
    if pair is None:
        lines.append("no pair labelled for this prompt" if last is not None else "no pair chosen yet")
    else:
        lines.append(
            f"verdict: response {pair[0] if verdict else pair[1]} preferred over {pair[1] if verdict else pair[0]}"
        )
    return "\n".join(lines) + "\n"
