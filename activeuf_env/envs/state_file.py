"""Env states as plain data, their fingerprint of the env, and state files that load without running code.

A state (:meth:`~activeuf_env.envs.active_uf.ActiveUFEnv.get_state`) is a dict ``{"version", "fingerprint", "rng",
"episode"}``: the episode as :meth:`~activeuf_env.envs.episode.Episode.state_dict` gives it (numpy arrays, the
ensemble's torch tensors, numbers, dicts, lists and tuples), the env generator's PCG64 state and a fingerprint of
the env that played it. A state resumes only on an env whose fingerprint is the same (:func:`check_fingerprint`):
the same pool content (a hash of the arrays of the episode's instance, split into train and eval), the same shapes
and every setting that changes a trajectory. The torch device is not part of it: a state moves between devices (its
tensors are stored on the CPU), but only the same device continues bit-identically.

A state file (:func:`write_state`, :func:`read_state`) is one uncompressed ``.npz``: every array and tensor is a
member of its own, and the rest is one JSON document (member ``state_json``, UTF-8 bytes) in which tagged
single-key objects stand for what JSON lacks (``{"__array__": member}``, ``{"__tensor__": member}``,
``{"__tuple__": [...]}`` and ``{"__items__": [[key, value], ...]}`` for a dict whose keys are not all plain strings,
such as the optimizer's per-parameter state). Files are read with ``allow_pickle=False``: loading one never runs
code, and a file holding pickled data (object arrays, or the pickles of state version 3 and before) is refused.
Writes are atomic (:mod:`activeuf_env._io`), so a failed save leaves the previous file, and no temporary file.

>>> import tempfile, pathlib, torch
>>> tmp = tempfile.TemporaryDirectory()
>>> state = {"order": np.arange(3), "step": torch.tensor(2.0), "betas": (0.9, 0.999), "by_id": {0: 1.5}}
>>> loaded = read_state(write_state(pathlib.Path(tmp.name) / "state.npz", state))
>>> loaded["order"].tolist(), loaded["step"].dtype, loaded["betas"], loaded["by_id"]
([0, 1, 2], torch.float32, (0.9, 0.999), {0: 1.5})
>>> tmp.cleanup()
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import weakref
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from activeuf_env._io import atomic_path
from activeuf_env.core.pool import ResponsePool
from activeuf_env.core.reward_model import EnsembleRewardModel, ReplayBuffer
from activeuf_env.envs.episode import STATE_VERSION, Episode

__all__ = [
    "check_fingerprint",
    "env_fingerprint",
    "make_state",
    "pool_fingerprint",
    "read_state",
    "restore_state",
    "write_state",
]

_FORMAT = "activeuf-env state"
_JSON_MEMBER = "state_json"
_TAGS = ("__array__", "__tensor__", "__tuple__", "__items__")
_JSON_TYPES = (str, int, float, bool, type(None))
# Errors np.load, zipfile and the decoder raise on a truncated, corrupt or crafted file.
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile, zlib.error)

# Pools are read-only, so each one's digest is computed once; entries go with the pool (weakly keyed).
_POOL_DIGESTS: weakref.WeakKeyDictionary[ResponsePool, str] = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------------- the state and the env's fingerprint


def make_state(episode: Episode, rng: np.random.Generator, fingerprint: dict[str, Any]) -> dict[str, Any]:
    """The state of ``episode`` and the env generator ``rng``, a deep copy (later steps do not change it)."""
    state = {
        "version": STATE_VERSION,
        "fingerprint": fingerprint,
        "rng": rng.bit_generator.state,
        "episode": episode.state_dict(),
    }
    return copy.deepcopy(state)


def restore_state(
    state: dict[str, Any] | str | os.PathLike[str],
    n_instances: int,
    fingerprint: Callable[[int], dict[str, Any]],
    model: EnsembleRewardModel,
    buffer: ReplayBuffer,
) -> tuple[Episode, np.random.Generator]:
    """Check a state against the env and rebuild its episode (into ``model`` and ``buffer``) and generator.

    The state is copied first, so the episode never shares an array with the caller's state.

    Args:
        state: what :func:`make_state` returned, or the path of a file of :func:`write_state`.
        n_instances: instances of the env the state is loaded into.
        fingerprint: the env's fingerprint of an instance (:func:`env_fingerprint`).
        model: a fresh ensemble of the env's config, to load the state's weights and optimizer into.
        buffer: a fresh replay buffer of the env's capacity.

    Raises:
        FileNotFoundError: no file at the path.
        ValueError: an unreadable file (:func:`read_state`), another version (naming both), an instance the env does
            not have, a fingerprint that differs (:func:`check_fingerprint`) or an incomplete state; a message about
            a file names its path.
    """
    source = "the state" if isinstance(state, dict) else repr(str(state))
    if not isinstance(state, dict):
        state = read_state(state)
    version = state.get("version") if isinstance(state, dict) else None
    if version != STATE_VERSION:
        raise ValueError(
            f"cannot resume {source}: expected an env state of version {STATE_VERSION}, got {version!r} (states "
            "saved by an older activeuf-env cannot be resumed: rerun the episode)"
        )
    episode = state.get("episode")
    instance_id = episode.get("instance_id") if isinstance(episode, dict) else None
    if isinstance(instance_id, bool) or not isinstance(instance_id, int) or not 0 <= instance_id < n_instances:
        raise ValueError(
            f"cannot resume {source}: expected an instance index in [0, {n_instances}) (this env), got "
            f"{instance_id!r} (the state)"
        )
    check_fingerprint(fingerprint(instance_id), state.get("fingerprint"), source)
    try:
        restored = Episode.from_state_dict(copy.deepcopy(episode), model, buffer)
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = state["rng"]
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as err:
        raise ValueError(f"cannot resume {source}: not a complete env state ({type(err).__name__}: {err})") from err
    return restored, rng


def _digest(pool: ResponsePool) -> str:
    if pool not in _POOL_DIGESTS:
        digest = hashlib.blake2b(digest_size=8)
        for name in ("features", "judge_scores", "true_quality", "model_ids", "valid"):
            array = np.ascontiguousarray(getattr(pool, name))
            digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
            digest.update(array.reshape(-1).view(np.uint8))
        # Texts are left out: they change exports, never a trajectory.
        digest.update(json.dumps([pool.model_names, pool.prompt_ids]).encode())
        _POOL_DIGESTS[pool] = digest.hexdigest()
    return _POOL_DIGESTS[pool]


def pool_fingerprint(train: ResponsePool, held_out: ResponsePool) -> str:
    """A hash of an instance's train and eval pools (their arrays, model names and prompt ids; cached per pool)."""
    return hashlib.blake2b(f"{_digest(train)}/{_digest(held_out)}".encode(), digest_size=8).hexdigest()


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists; what JSON cannot hold becomes its ``repr``)."""
    return json.loads(json.dumps(value, default=repr))


def env_fingerprint(settings: Mapping[str, Any], train: ResponsePool, held_out: ResponsePool) -> dict[str, Any]:
    """The fingerprint of an env: its settings as plain data and the :func:`pool_fingerprint` of an instance.

    Args:
        settings: the env's settings and shapes (``n_responses``, ``feature_dim``...); ``instances`` (in the pool
            fingerprint instead) and ``device`` (states move between devices) are left out, config dataclasses give
            one entry per field, except a field marked ``metadata={"fingerprint": "omit_at_default"}`` while it
            holds its default (a field added later, such as ``RewardModelConfig.matmul_dtype``: states saved before
            it existed, necessarily at its default, keep loading, and a default config's fingerprint is unchanged).
        train, held_out: the pools of the episode's instance.
    """
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if key in ("instances", "device"):
            continue
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            items = dataclasses.asdict(value)
            for spec in dataclasses.fields(value):
                if spec.metadata.get("fingerprint") == "omit_at_default" and items[spec.name] == spec.default:
                    del items[spec.name]
            out.update({f"{key}.{name}": item for name, item in items.items()})
        else:
            out[key] = value
    out["pool"] = pool_fingerprint(train, held_out)
    return _plain(out)


def check_fingerprint(expected: dict[str, Any], got: Any, source: str) -> None:
    """Refuse a state whose fingerprint ``got`` differs from this env's ``expected``, naming every difference.

    Raises:
        ValueError: e.g. ``expected batch_size=32 (this env), got 16 (the state)``, or for the pool ``the state was
            saved on a different pool (fingerprint a1b2... vs c3d4... of this env)``.
    """
    if not isinstance(got, dict):
        raise ValueError(f"cannot resume {source}: it holds no env fingerprint, got {type(got).__name__}")
    got = _plain(got)
    differences = []
    for key in sorted(expected.keys() | got.keys(), key=lambda k: (k == "pool", k)):
        mine, theirs = expected.get(key, "(absent)"), got.get(key, "(absent)")
        if mine == theirs:
            continue
        if key == "pool":
            differences.append(f"the state was saved on a different pool (fingerprint {theirs} vs {mine} of this env)")
        else:
            differences.append(f"expected {key}={mine!r} (this env), got {theirs!r} (the state)")
    if differences:
        raise ValueError(f"cannot resume {source} on this env: {'; '.join(differences)}")


# ---------------------------------------------------------------------- the file: arrays and one JSON document


def _encode(value: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if isinstance(value, (np.ndarray, torch.Tensor)):
        tag = "__tensor__" if isinstance(value, torch.Tensor) else "__array__"
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        if array.dtype.hasobject:
            raise TypeError(f"{where}: a state holds numeric arrays only, got one of dtype {array.dtype}")
        name = f"a{len(arrays)}"
        arrays[name] = array
        return {tag: name}
    if isinstance(value, _JSON_TYPES):
        return value
    if isinstance(value, (list, tuple)):
        items = [_encode(item, arrays, f"{where}[{i}]") for i, item in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        if all(isinstance(key, str) and not key.startswith("__") for key in value):
            return {key: _encode(item, arrays, f"{where}[{key!r}]") for key, item in value.items()}
        return {
            "__items__": [
                [_encode(key, arrays, f"{where} key"), _encode(item, arrays, f"{where}[{key!r}]")]
                for key, item in value.items()
            ]
        }
    raise TypeError(f"{where}: a state holds arrays, tensors and plain data only, got {type(value).__name__}")


def _decode(value: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(value, list):
        return [_decode(item, arrays) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and (tag := next(iter(value))) in _TAGS:
        content = value[tag]
        if tag == "__tuple__":
            return tuple(_decode(item, arrays) for item in content)
        if tag == "__items__":
            return {_decode(key, arrays): _decode(item, arrays) for key, item in content}
        if content not in arrays:
            raise ValueError(f"the JSON document names an array {content!r} the file does not hold")
        return torch.from_numpy(arrays[content]) if tag == "__tensor__" else arrays[content]
    return {key: _decode(item, arrays) for key, item in value.items()}


def write_state(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically as one ``.npz`` of arrays and a JSON document (whatever the suffix).

    Raises:
        TypeError: the state holds something other than arrays, tensors and plain data (naming where).
        OSError: the file cannot be written (the previous file, if any, is left as it was).
    """
    arrays: dict[str, np.ndarray] = {}
    document = json.dumps({"format": _FORMAT, "state": _encode(state, arrays, "state")})
    arrays[_JSON_MEMBER] = np.frombuffer(document.encode("utf-8"), dtype=np.uint8)
    # A file handle, not a name: np.savez would append ".npz" to a temporary name without it.
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    return Path(path)


def read_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a state written by :func:`write_state` (``allow_pickle=False``: reading never runs code).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is truncated, corrupt, holds pickled data or is not an env state (naming the path).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved environment state at {str(path)!r}")
    try:
        # Our own handle: np.load leaves the file open when it is not a readable archive.
        with open(path, "rb") as handle:
            archive = np.load(handle, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError(f"expected an .npz archive, got a single array of shape {archive.shape}")
            if _JSON_MEMBER not in archive.files:
                raise ValueError(f"expected a member {_JSON_MEMBER!r}, got {sorted(archive.files)}")
            arrays = {name: archive[name] for name in archive.files}
        document = json.loads(arrays.pop(_JSON_MEMBER).tobytes().decode("utf-8"))
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        if found != _FORMAT:
            raise ValueError(f"expected format {_FORMAT!r}, got {found!r}")
        return _decode(document["state"], arrays)
    except _READ_ERRORS as err:
        hint = " (pickled data is never loaded; states of version 3 and before were pickles: rerun the episode)"
        raise ValueError(
            f"{str(path)!r} is not a readable activeuf-env state file: {err}{hint if 'pickle' in str(err) else ''}"
        ) from err
