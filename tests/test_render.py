"""``render_mode="ansi"`` on real pools: prompt and response snippets, cut to one line each."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from helpers import random_pairs

from activeuf_env import ActiveUFEnv
from activeuf_env.data.encoders import HashingEncoder
from activeuf_env.data.locate import locate_alpaca_eval
from activeuf_env.data.readers import read_auf_dataset
from activeuf_env.data.writers import write_auf_dataset

MODELS = ["alpha-7b", "a-model-with-a-remarkably-long-name-v2.5-instruct", "gamma-2b", "delta-70b"]
LONG = "This sentence is padding.\n\n" * 40  # ~1,000 characters over many lines


def texts_pool(tmp_path: Path) -> Any:
    """A tiny AUF dataset with texts: long multi-line prompts and responses, one empty response per prompt."""
    rows = []
    for p in range(12):
        completions = [
            {"model": m, "response_text": "" if k == 2 else f"Reply {k} of {m} to {p}. {LONG}", "overall_score": k}
            for k, m in enumerate(MODELS)
        ]
        rows.append(
            {"prompt_id": f"r{p:02d}", "prompt": f"Prompt {p}, asked at length. {LONG}", "completions": completions}
        )
    path = write_auf_dataset(rows, tmp_path / "texts.jsonl")
    return read_auf_dataset(path, features=HashingEncoder(8), cache=False)


def shown_prompt(env: ActiveUFEnv) -> int:
    return int(env.episode.order[0][0])


def test_real_pool_renders_prompt_and_response_snippets(tmp_path: Path) -> None:
    pool = texts_pool(tmp_path)
    env = ActiveUFEnv(pool, batch_size=4, eval_size=4, render_mode="ansi")
    obs, _ = env.reset(seed=0)
    text = env.render()
    train = env.pool
    p = shown_prompt(env)
    assert "before any label" in text and f"prompt {train.prompt_ids[p]!r}" in text
    lines = text.splitlines()
    prompt_line = next(line for line in lines if line.startswith("  > "))
    assert prompt_line.startswith(f"  > Prompt {int(train.prompt_ids[p][1:])}, asked at length. This sentence")
    assert prompt_line.endswith("…") and len(prompt_line) == 4 + 100
    rows = [line for line in lines if line[:4].strip().isdigit()]
    assert len(rows) == len(MODELS)
    for k, row in enumerate(rows):
        if k == 2:
            assert row.endswith("(empty)")
        else:
            assert f"Reply {k} of" in row and row.endswith("…")
            assert "\n" not in row and "  This" not in row  # whitespace collapsed
    # the long model name is cut to the 32-character column, and the columns stay aligned
    assert "a-model-with-a-remarkably-long-…" in rows[1]
    assert len({len(row) for k, row in enumerate(rows) if k != 2}) == 1
    # after a step: the labelled pair and the verdict
    env.step(random_pairs(obs, np.random.default_rng(0)))
    text = env.render()
    assert "chosen" in text and "rejected" in text and "verdict: response" in text
    assert max(len(line) for line in text.splitlines()) <= 140


def test_pool_without_texts_renders_model_names_only(tmp_path: Path) -> None:
    pool = texts_pool(tmp_path)
    bare = dataclasses.replace(pool, texts=None)
    env = ActiveUFEnv(bare, batch_size=4, eval_size=4, render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert "response" not in text.splitlines()[2] and "  > " not in text and "alpha-7b" in text


def test_alpaca_eval_renders_real_texts() -> None:
    try:
        locate_alpaca_eval()
    except FileNotFoundError as err:
        pytest.skip(f"shared AlpacaEval data absent: {err}")
    env = gym.make("ActiveUF/AlpacaEval-v0", render_mode="ansi")
    obs, _ = env.reset(seed=0)
    env.step(random_pairs(obs, np.random.default_rng(0)))
    text = env.render()
    inner = env.unwrapped
    prompt = int(inner.episode.last.prompts[0])
    flat = " ".join(inner.pool.texts.prompts[prompt].split())
    assert f"  > {flat[:40]}" in text
    rows = [line for line in text.splitlines() if line[:4].strip().isdigit()]
    assert len(rows) == int(inner.pool.valid[prompt].sum())
    assert sum("chosen" in row for row in rows) == 1 and sum("rejected" in row for row in rows) == 1
    assert max(len(line) for line in text.splitlines()) <= 140
    env.close()
