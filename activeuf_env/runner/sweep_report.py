"""The ``summary.md`` of a sweep (:func:`~activeuf_env.runner.sweep.run_sweep`): per metric, each agent's score with
its default configuration and with the chosen one (on the fresh report seeds, and on the selection seeds it was
chosen on, as AUF reported), the three rankings and the chosen configurations."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from activeuf_env.runner.grid import Configuration

__all__ = ["SWEEP_METRICS", "format_sweep_summary", "sweep_rankings"]

SWEEP_METRICS: tuple[str, ...] = ("dpo_score", "rm_score")
"""The metrics a configuration is chosen by, each on its own (AUF tuned for DPO and for the reward model apart)."""


def sweep_rankings(table: Any, chosen: Mapping[str, Mapping[str, str]], metric: str) -> Any:
    """Per agent: ``default``, ``tuned`` (report seeds), ``tuned_selection`` (selection seeds) means of ``metric``,
    their ranks (1 = best; ties share the better rank) and the ``chosen`` configuration id.

    Example:
        >>> import pandas as pd
        >>> table = pd.DataFrame([
        ...     ("selection", "c00", "a", 0.1), ("selection", "c01", "a", 0.3), ("selection", "c00", "b", 0.2),
        ...     ("report", "default", "a", 0.1), ("report", "default", "b", 0.2), ("report", "c01", "a", 0.25),
        ...     ("report", "c00", "b", 0.2)], columns=["phase", "config", "agent", "dpo_score"])
        >>> chosen = {"a": {"dpo_score": "c01"}, "b": {"dpo_score": "c00"}}
        >>> sweep_rankings(table, chosen, "dpo_score")[["agent", "default", "tuned", "rank_default", "rank_tuned"]]
          agent  default  tuned  rank_default  rank_tuned
        0     a      0.1   0.25             2           1
        1     b      0.2   0.20             1           2
    """
    import pandas as pd

    def value(phase: str, config: str, agent: str) -> float:
        rows = table[(table["phase"] == phase) & (table["config"] == config) & (table["agent"] == agent)]
        return float(rows[metric].iloc[0]) if len(rows) else math.nan  # every episode of it failed (see its summary)

    rows = []
    for agent, choice in chosen.items():
        config = choice[metric]
        rows.append(
            {
                "agent": agent,
                "default": value("report", "default", agent),
                "tuned": value("report", config, agent),
                "tuned_selection": value("selection", config, agent),
                "chosen": config,
            }
        )
    frame = pd.DataFrame(rows)
    for column in ("default", "tuned", "tuned_selection"):
        frame[f"rank_{column}"] = frame[column].rank(method="min", ascending=False).astype("Int64")
    return frame


def _metric_section(
    table: Any, chosen: Mapping[str, Mapping[str, str]], metric: str, labels: Mapping[str, str]
) -> list[str]:
    ranks = sweep_rankings(table, chosen, metric).sort_values("rank_tuned", kind="stable")
    lines = [
        f"## Chosen by {metric}",
        "",
        "Means over seeds of the final value. *default*: every agent's own defaults; *tuned*: the configuration",
        "with the best mean on the selection seeds, re-run on the report seeds; *on selection seeds*: the same",
        "configuration on the seeds it was chosen on (what AUF reported: chosen and reported on one run).",
        "",
        "| agent | default | tuned | tuned − default | on selection seeds | rank default | rank tuned "
        "| rank on selection seeds | chosen configuration |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in ranks.iterrows():
        cells = [
            str(row["agent"]),
            f"{row['default']:.4f}",
            f"{row['tuned']:.4f}",
            f"{row['tuned'] - row['default']:+.4f}",
            f"{row['tuned_selection']:.4f}",
            str(row["rank_default"]),
            str(row["rank_tuned"]),
            str(row["rank_tuned_selection"]),
            f"{row['chosen']}: {labels[row['chosen']]}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if len(ranks) > 1:
        rho = ranks["default"].corr(ranks["tuned"], method="spearman")
        lines += ["", f"Spearman correlation of the default and the tuned ranking: {rho:.2f}."]
    return [*lines, ""]


def format_sweep_summary(
    table: Any,
    chosen: Mapping[str, Mapping[str, str]],
    configurations: Mapping[str, Configuration],
    record: Mapping[str, Any],
    command: str | None,
) -> str:
    """The Markdown of a sweep's ``summary.md``."""
    labels = {cid: configuration.label for cid, configuration in configurations.items()}
    counts = {agent: sum(agent in c["agents"] for c in record["configurations"].values()) for agent in record["agents"]}
    lines = [
        f"# Sweep on {record['env_id']}",
        "",
        *([f"Command: `{command}`", ""] if command else []),
        f"{len(record['configurations'])} configurations ({', '.join(f'{a}: {n}' for a, n in counts.items())}); "
        f"chosen on selection seeds {record['selection_seeds']}, reported on fresh seeds {record['report_seeds']}.",
        "",
    ]
    for metric in SWEEP_METRICS:
        lines += _metric_section(table, chosen, metric, labels)
    lines += ["## Configurations", "", "| id | configuration | agents |", "|---|---|---|"]
    lines.append(f"| default | {labels['default']} | {', '.join(record['agents'])} |")
    for cid, entry in record["configurations"].items():
        lines.append(f"| {cid} | {entry['label']} | {', '.join(entry['agents'])} |")
    return "\n".join(lines) + "\n"
