"""Stage: checkpoints -- everything a run needs to continue exactly where it stopped.

A run directory's ``checkpoint/`` holds (as nanoGPT's checkpoint: model, optimiser,
step, best score, config)

    params.npz     the current parameters
    best.npz       the best epoch's parameters (what model/ holds)
    velocity.npz   the momentum buffers (only with train.momentum > 0)
    state.json     the config, the LoopState, the vocabulary and the run's fixed facts
                   (embedding source, coverage, training-data hash, classes)

It is written as a whole (files.write_dir_atomic): a crash or a kill keeps the
previous checkpoint complete.  Everything random in training derives from
(train.seed, epoch), so a run resumed from a checkpoint, even one written
mid-epoch by SIGINT/SIGTERM, ends byte-identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .config import Config, from_dict
from .errors import ConfigError
from .files import write_dir_atomic
from .model import Params
from .vocab import Vocab

CHECKPOINT = "checkpoint"  # the subdirectory of a run directory


@dataclass
class LoopState:
    """Where the training loop is: enough, with the parameters, to resume exactly."""

    epoch: int = 0  # the epoch being run (0-based)
    batch: int = 0  # the next minibatch of that epoch
    step: int = 0  # SGD steps taken so far
    best_f1: float = -1.0
    best_epoch: int = -1  # 0-based; the epoch whose parameters model/ holds
    bad_epochs: int = 0
    threshold: float = 0.5
    loss_sum: float = 0.0  # Σ J (data loss + L2) over the current epoch's batches
    data_loss_sum: float = 0.0  # Σ J_data over the same batches
    loss_count: int = 0
    epoch_seconds: float = 0.0  # seconds spent in the current epoch before an interruption
    dropout_state: dict | None = None  # word-dropout generator mid-epoch
    history: list[dict] = field(default_factory=list)
    stopped_early: int = -1  # 0-based epoch after which early stopping ended the run, -1: it did not
    done: bool = False


@dataclass
class Checkpoint:
    """A checkpoint read back: the run's config and vocabulary, its loop state, parameters and facts."""

    config: Config
    vocab: Vocab
    state: LoopState
    params: Params
    best: Params
    velocity: dict[str, np.ndarray] | None
    extra: dict


def _save_arrays(path: Path, arrays: dict) -> None:
    with open(path, "wb") as f:
        np.savez(f, **{k: v for k, v in arrays.items() if v is not None})


def _load_arrays(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def write_checkpoint(run_dir: Path, cfg: Config, vocab: Vocab, params: Params, best: Params,
                     velocity: dict | None, state: LoopState, extra: dict) -> None:
    """Write ``run_dir/checkpoint`` atomically: a crash keeps the previous checkpoint whole."""

    def write(tmp: Path) -> None:
        _save_arrays(tmp / "params.npz", params.to_dict())
        _save_arrays(tmp / "best.npz", best.to_dict())
        if velocity:
            _save_arrays(tmp / "velocity.npz", velocity)
        (tmp / "state.json").write_text(json.dumps(
            {"config": cfg.to_dict(), "state": asdict(state), "vocab": vocab.to_list(), "extra": extra}
        ), encoding="utf-8")

    write_dir_atomic(Path(run_dir) / CHECKPOINT, write)


def has_checkpoint(run_dir: Path) -> bool:
    """True when ``run_dir`` holds a complete checkpoint."""
    return (Path(run_dir) / CHECKPOINT / "state.json").is_file()


def read_checkpoint(run_dir: Path) -> Checkpoint:
    """The checkpoint of ``run_dir``; ConfigError when there is none or it is damaged."""
    ck = Path(run_dir) / CHECKPOINT
    if not ck.exists():
        # write_dir_atomic swaps directories with two renames; a hard kill between them leaves
        # the previous, complete checkpoint as .checkpoint.old-PID: resume from that one
        stale = sorted(Path(run_dir).glob(f".{CHECKPOINT}.old-*"), key=lambda p: p.stat().st_mtime)
        if stale and (stale[-1] / "state.json").is_file():
            ck = stale[-1]
    if not (ck / "state.json").is_file():
        raise ConfigError(f"{run_dir}: no checkpoint to resume from ({ck / 'state.json'} is missing); "
                          f"start a new run with --config")
    try:
        doc = json.loads((ck / "state.json").read_text(encoding="utf-8"))
        params = Params.from_dict(_load_arrays(ck / "params.npz"))
        best = Params.from_dict(_load_arrays(ck / "best.npz"))
        velocity = _load_arrays(ck / "velocity.npz") if (ck / "velocity.npz").exists() else None
        state, vocab, extra = LoopState(**doc["state"]), Vocab.from_list(doc["vocab"]), doc["extra"]
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
        raise ConfigError(f"{ck}: checkpoint is damaged ({type(e).__name__}: {e}); start a new run") from None
    cfg = from_dict(doc["config"], f"{ck}/state.json")
    return Checkpoint(config=cfg, vocab=vocab, state=state, params=params, best=best, velocity=velocity, extra=extra)
