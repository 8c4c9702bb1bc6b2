"""The benchmark's summary: per agent, final scores with bootstrap CIs, cumulative regret and labels-to-match.

:func:`summarize_results` turns the tidy results table into one row per agent; :func:`format_summary` writes it as
the Markdown of ``summary.md``. Confidence intervals are :func:`~activeuf_env.runner.metrics.mean_ci`, the same
bootstrap setting as the plots. Needs pandas (the ``bench`` extra).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from activeuf_env.runner.metrics import NEVER, REFERENCE_AGENT, format_fraction, labels_to_match, mean_ci
from activeuf_env.runner.outcome import EpisodeFailure

__all__ = ["PAIRED_METRICS", "format_paired", "format_summary", "paired_differences", "summarize_results"]

PAIRED_METRICS: tuple[str, ...] = ("score", "dpo_score", "rm_score")
"""The final values compared episode by episode in :func:`paired_differences`."""


def summarize_results(results: Any, reference_agent: str = REFERENCE_AGENT) -> Any:
    """Per-agent summary of a tidy results table: final scores with bootstrap 95% CIs over seeds, and more.

    Args:
        results: the tidy ``pandas.DataFrame`` of :func:`~activeuf_env.runner.benchmark.run_benchmark` (columns
            :data:`~activeuf_env.runner.episode.RESULT_COLUMNS`).
        reference_agent: the agent whose full-budget mean score is the labels-to-match target.

    Returns:
        A ``pandas.DataFrame`` with one row per agent (in order of first appearance): ``agent``, ``seeds``,
        ``score``/``rm_score``/``dpo_score``/``cumulative_regret`` each with ``_low`` and ``_high`` (95% CI of the
        mean over seeds, from the final round of each episode), ``budget``, ``final_labels``, ``labels_to_match``
        (labels, :data:`~activeuf_env.runner.metrics.NEVER` if never reached, ``None`` without the reference agent) and
        ``labels_to_match_fraction`` (``"1/6"``, ``"never"`` or ``"n/a"``).

    Example:
        >>> import pandas as pd
        >>> rows = [{"agent": a, "seed": s, "round": r, "labels": 64 * r, "budget": 128, "score": v, "rm_score": v,
        ...          "dpo_score": v, "cumulative_regret": 0.0}
        ...         for a, base in (("random", 0.2), ("drts", 0.3)) for s in (0, 1)
        ...         for r, v in ((0, 0.1), (1, base), (2, base + 0.05))]
        >>> summary = summarize_results(pd.DataFrame(rows))
        >>> summary[["agent", "score", "labels_to_match", "labels_to_match_fraction"]].values.tolist()
        [['random', 0.25, 128, '1'], ['drts', 0.35, 64, '1/2']]
    """
    import pandas as pd

    if results.empty:
        return pd.DataFrame(columns=["agent", "seeds"])
    ordered = results.sort_values(["agent", "seed", "round"], kind="stable")
    finals = ordered.groupby(["agent", "seed"], sort=False).tail(1)
    target = None
    if reference_agent in set(finals["agent"]):
        target = float(finals.loc[finals["agent"] == reference_agent, "score"].mean())
    rows = []
    for agent in dict.fromkeys(results["agent"]):
        final = finals[finals["agent"] == agent]
        row: dict[str, Any] = {"agent": agent, "seeds": len(final)}
        for column in ("score", "rm_score", "dpo_score", "cumulative_regret"):
            mean, low, high = mean_ci(final[column].to_numpy(dtype=np.float64))
            row.update({column: mean, f"{column}_low": low, f"{column}_high": high})
        budget = int(final["budget"].max())
        row["budget"], row["final_labels"] = budget, float(final["labels"].mean())
        curve = ordered[ordered["agent"] == agent].groupby("round")[["labels", "score"]].mean()
        if target is None:
            row["labels_to_match"], row["labels_to_match_fraction"] = None, "n/a"
        else:
            # Mean labels per round can be fractional when seeds skip differently; never report fewer than spent.
            # The tolerance keeps the reference agent from missing its own mean by a rounding difference.
            match = labels_to_match(np.ceil(curve["labels"].to_numpy()), curve["score"].to_numpy(), target - 1e-12)
            row["labels_to_match"] = match
            row["labels_to_match_fraction"] = "never" if match == NEVER else format_fraction(match / budget, 16)
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences(results: Any, agent: str) -> Any:
    """``agent``'s final values minus every other agent's, episode by episode (same seed), with bootstrap 95% CIs.

    The same seed is the same episode of the env for every agent (on ``ActiveUF/SyntheticTasks-v0`` also the same
    task), so the difference cancels what the episode's draw adds to both; the CI is
    :func:`~activeuf_env.runner.metrics.mean_ci` of the per-seed differences (seeds both agents finished).

    Returns:
        A ``pandas.DataFrame`` with one row per other agent: ``agent``, ``pairs`` and, per metric of
        :data:`PAIRED_METRICS`, the mean difference with ``_low`` and ``_high``, and ``{metric}_wins`` (share of the
        pairs where ``agent`` is higher).

    Example:
        >>> import pandas as pd
        >>> rows = [{"agent": a, "seed": s, "round": 1, "score": v + s, "dpo_score": v, "rm_score": v}
        ...         for a, v in (("learned", 0.3), ("drts", 0.2)) for s in range(4)]
        >>> paired_differences(pd.DataFrame(rows), "learned")[["agent", "pairs", "score"]].round(3).values.tolist()
        [['drts', 4, 0.1]]
    """
    import pandas as pd

    finals = results.sort_values(["agent", "seed", "round"], kind="stable").groupby(["agent", "seed"]).tail(1)
    mine = finals[finals["agent"] == agent].set_index("seed")
    rows = []
    for other in dict.fromkeys(results["agent"]):
        if other == agent:
            continue
        theirs = finals[finals["agent"] == other].set_index("seed")
        seeds = mine.index.intersection(theirs.index)
        row: dict[str, Any] = {"agent": other, "pairs": len(seeds)}
        for metric in PAIRED_METRICS:
            diff = (mine.loc[seeds, metric] - theirs.loc[seeds, metric]).to_numpy(dtype=np.float64)
            mean, low, high = mean_ci(diff) if len(diff) else (math.nan, math.nan, math.nan)
            row.update({metric: mean, f"{metric}_low": low, f"{metric}_high": high})
            row[f"{metric}_wins"] = float((diff > 0).mean()) if len(diff) else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def format_paired(paired: Any, agent: str) -> list[str]:
    """The Markdown lines of a :func:`paired_differences` table."""
    lines = [
        f"## Paired differences: {agent} minus each agent",
        "",
        "Final values of the same episodes (same seed; on a task env, the same task), mean difference with a bootstrap",
        f"95% CI; wins: share of the episodes where {agent} is higher.",
        "",
        "| agent | pairs | Δ score | Δ dpo_score | Δ rm_score | wins (score) |",
        "|---|---|---|---|---|---|",
    ]
    for _, row in paired.sort_values("score", kind="stable").iterrows():
        cells = [
            str(row["agent"]),
            str(int(row["pairs"])),
            *(_format_ci(row[m], row[f"{m}_low"], row[f"{m}_high"], 4) for m in PAIRED_METRICS),
            f"{row['score_wins']:.0%}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _format_ci(mean: float, low: float, high: float, digits: int = 3) -> str:
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def format_summary(
    summary: Any,
    *,
    env_id: str,
    seeds: Sequence[int],
    command: str | None = None,
    reference_agent: str = REFERENCE_AGENT,
    failures: Sequence[EpisodeFailure] = (),
    notes: Sequence[str] = (),
    paired: tuple[str, Any] | None = None,
) -> str:
    """The Markdown of ``summary.md``: a header (env, seeds, command), the per-agent table, failures and notes.

    Args:
        summary: the output of :func:`summarize_results`.
        env_id: the benchmarked env id.
        seeds: the seeds of the run.
        command: the command line that produced it.
        reference_agent: the labels-to-match reference (named in the explanation).
        failures: episodes that raised.
        notes: extra lines (e.g. W&B or plotting failures, where the artefacts are).
        paired: ``(agent, paired_differences(results, agent))`` to add its paired table.

    Returns:
        Markdown text.
    """
    lines = [f"# Benchmark: `{env_id}`", ""]
    if command:
        lines.append(f"- command: `{command}`")
    lines.append(f"- seeds: {', '.join(str(seed) for seed in seeds)} ({len(seeds)} per agent)")
    if len(summary) and "budget" in summary:
        lines.append(f"- full budget: {int(summary['budget'].max())} labels")
    lines += [
        "- final values: means over seeds at the end of the episode, with bootstrap 95% CIs in brackets;",
        "  cum. regret = Σ over rounds of (S* − score) × labels spent in the round",
        f"- labels to match {reference_agent}: fewest labels at which the agent's mean score curve reaches "
        f"{reference_agent}'s full-budget mean score, as a fraction of the budget (labels in parentheses)",
        "",
        f"| agent | seeds | score | rm_score | dpo_score | cum. regret | labels to match {reference_agent} |",
        "|---|---|---|---|---|---|---|",
    ]
    ranked = summary.sort_values("score", ascending=False, kind="stable") if len(summary) else summary
    for _, row in ranked.iterrows():
        if row["labels_to_match"] is None or (
            isinstance(row["labels_to_match"], float) and math.isnan(row["labels_to_match"])
        ):
            match = row["labels_to_match_fraction"]
        elif int(row["labels_to_match"]) == NEVER:
            match = "never"
        else:
            match = f"{row['labels_to_match_fraction']} ({int(row['labels_to_match'])})"
        cells = [
            str(row["agent"]),
            str(int(row["seeds"])),
            *(_format_ci(row[c], row[f"{c}_low"], row[f"{c}_high"]) for c in ("score", "rm_score", "dpo_score")),
            _format_ci(row["cumulative_regret"], row["cumulative_regret_low"], row["cumulative_regret_high"], 1),
            match,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if paired is not None and len(paired[1]):
        lines += ["", *format_paired(paired[1], paired[0])]
    if failures:
        lines += ["", f"## Failed episodes ({len(failures)})", ""]
        for failure in failures:
            error = " ".join(failure.error.split())
            lines.append(f"- {failure.agent}, seed {failure.seed}: `{error}`")
    if notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"
