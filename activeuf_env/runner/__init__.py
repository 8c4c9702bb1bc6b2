"""Running agents on environments: the episode loop, the benchmark, its summary, metrics and plots.

One job per module:

- :mod:`~activeuf_env.runner.episode`: the episode loop (:func:`play_episode`), the env kwargs rule
  (:func:`merge_env_kwargs`) and one benchmark episode's rows (:func:`run_episode`);
- :mod:`~activeuf_env.runner.outcome`: one episode's outcome (:func:`run_task`, every backend's entry point);
- :mod:`~activeuf_env.runner.workers`: many episodes, in this process, in ``spawn`` worker processes or on Ray;
- :mod:`~activeuf_env.runner.ray_backend`: the episodes as Ray tasks, on a local Ray instance or a cluster;
- :mod:`~activeuf_env.runner.plan`: the checked settings of a benchmark, its ``config.json`` and output folder;
- :mod:`~activeuf_env.runner.store`: one JSON file per finished episode, and the resume check;
- :mod:`~activeuf_env.runner.grid` and :mod:`~activeuf_env.runner.sweep`: a grid of configurations, and the
  tuning protocol over it (:func:`run_sweep`), with its summary (:mod:`~activeuf_env.runner.sweep_report`);
- :mod:`~activeuf_env.runner.benchmark`: :func:`run_benchmark`, the grid of agents × seeds into its artefacts;
- :mod:`~activeuf_env.runner.artefacts`: the files of an output directory, written atomically;
- :mod:`~activeuf_env.runner.summary`: the per-agent summary and ``summary.md``;
- :mod:`~activeuf_env.runner.metrics`: regret, labels-to-match, fractions, the bootstrap CI;
- :mod:`~activeuf_env.runner.plots`: the PNG plots;
- :mod:`~activeuf_env.runner.extras`: the check for the ``bench`` extra.

Importing this package imports neither pandas nor matplotlib nor wandb; the functions that need them do.
"""

from activeuf_env.runner.artefacts import ARTEFACTS
from activeuf_env.runner.benchmark import BenchmarkResult, run_benchmark
from activeuf_env.runner.episode import (
    RESULT_COLUMNS,
    SCORE_COLUMNS,
    EpisodeTask,
    Step,
    make_env,
    merge_env_kwargs,
    play_episode,
    run_episode,
)
from activeuf_env.runner.extras import require_bench_extra
from activeuf_env.runner.metrics import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    NEVER,
    bootstrap_ci,
    compute_regret,
    cumulative_regret,
    episode_cumulative_regret,
    format_fraction,
    labels_to_match,
    mean_ci,
)
from activeuf_env.runner.outcome import EpisodeFailure
from activeuf_env.runner.plots import curve_stats, plot_cumulative_regret, plot_final_scores, plot_score_curves
from activeuf_env.runner.summary import format_summary, summarize_results

__all__ = [
    "ARTEFACTS",
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "NEVER",
    "RESULT_COLUMNS",
    "SCORE_COLUMNS",
    "BenchmarkResult",
    "EpisodeFailure",
    "EpisodeTask",
    "Step",
    "bootstrap_ci",
    "compute_regret",
    "cumulative_regret",
    "curve_stats",
    "episode_cumulative_regret",
    "format_fraction",
    "format_summary",
    "labels_to_match",
    "make_env",
    "mean_ci",
    "merge_env_kwargs",
    "play_episode",
    "plot_cumulative_regret",
    "plot_final_scores",
    "plot_score_curves",
    "require_bench_extra",
    "run_benchmark",
    "run_episode",
    "summarize_results",
]
