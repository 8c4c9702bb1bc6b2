"""Learned-selector checkpoints: the weights as ``safetensors`` (no pickle: loading cannot run code) and a JSON file
beside them (same stem, ``.json``) with the architecture, the feature list and how the weights were made.

The JSON holds ``format`` (:data:`CHECKPOINT_FORMAT`), ``policy`` (the :class:`~agents.learned.policy.PolicyConfig`
fields), ``features`` (:data:`~agents.learned.policy.FEATURES` at training time), and free-form ``training``
(command, instance split, wall time) and ``metrics`` entries.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from activeuf_env._io import atomic_path, atomic_write_text
from agents.learned.policy import FEATURES, PolicyConfig, SelectorPolicy

__all__ = ["CHECKPOINT_FORMAT", "SHIPPED_CHECKPOINT", "config_path", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "activeuf-learned-selector/1"
"""The ``format`` entry of a checkpoint's JSON; another value is refused."""

SHIPPED_CHECKPOINT = Path(__file__).with_name("checkpoints") / "selector.safetensors"
"""The checkpoint that ``agents.make("learned")`` loads."""


def config_path(path: str | os.PathLike[str]) -> Path:
    """The JSON file beside a checkpoint's weights."""
    return Path(path).with_suffix(".json")


def save_checkpoint(
    path: str | os.PathLike[str], policy: SelectorPolicy, *, training: dict[str, Any], metrics: dict[str, Any]
) -> Path:
    """Write ``policy``'s weights to ``path`` (``.safetensors``) and its JSON beside it, both atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"a checkpoint path must end in .safetensors, got {str(path)!r}")
    tensors = {name: tensor.detach().contiguous() for name, tensor in policy.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
    payload = {
        "format": CHECKPOINT_FORMAT,
        "policy": {"hidden": policy.config.hidden, "pair_rank": policy.config.pair_rank},
        "features": list(FEATURES),
        "training": training,
        "metrics": metrics,
    }
    atomic_write_text(config_path(path), json.dumps(payload, indent=2) + "\n")
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[SelectorPolicy, dict[str, Any]]:
    """The policy and the JSON of the checkpoint at ``path``.

    Raises:
        FileNotFoundError: the weights or the JSON are missing (naming the file).
        ValueError: a corrupt file, another format, or weights and JSON that do not fit this network or this
            version's features (naming the file and the mismatch).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path, meta_path = Path(path), config_path(path)
    for file in (path, meta_path):
        if not file.is_file():
            raise FileNotFoundError(f"no learned-selector checkpoint file at {str(file)!r}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{str(meta_path)!r} is not a checkpoint's JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{str(meta_path)!r}: expected format {CHECKPOINT_FORMAT!r}, got {found!r}")
    if meta.get("features") != list(FEATURES):
        raise ValueError(
            f"{str(meta_path)!r} was trained on the features {meta.get('features')}, this version computes "
            f"{list(FEATURES)}: retrain the selector"
        )
    try:
        policy = SelectorPolicy(PolicyConfig(**meta["policy"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{str(meta_path)!r}: bad 'policy' entry {meta.get('policy')!r} ({exc})") from None
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{str(path)!r} is not a safetensors file ({exc})") from None
    expected = {name: tuple(t.shape) for name, t in policy.state_dict().items()}
    found = {name: tuple(t.shape) for name, t in tensors.items()}
    if found != expected:
        wrong = sorted(set(expected) ^ set(found) | {n for n in expected if n in found and expected[n] != found[n]})
        raise ValueError(
            f"{str(path)!r} does not fit the architecture of {str(meta_path)!r}: tensors {wrong} differ "
            f"(expected {[expected.get(n) for n in wrong]}, got {[found.get(n) for n in wrong]})"
        )
    policy.load_state_dict(tensors)
    policy.eval()
    return policy, meta
