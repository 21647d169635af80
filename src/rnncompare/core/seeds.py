"""The one place seeds come from: every seed is derived from the study's `seed`, never from the clock."""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, purpose: str) -> int:
    """A seed for one purpose (data split, tuner, weights, ...): SHA-256 of ``seed:purpose``, below 2**31 - 1."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1)


def evaluation_seeds(seed: int, count: int) -> list[int]:
    """The seeds every architecture is retrained with after tuning: derived from the study seed, shared by all."""
    return [derive_seed(seed, f"evaluation-{index}") for index in range(count)]


def default_round(minimum: int) -> int:
    """Seeds a sequential study adds per round where `evaluation.seeds` names no `round`: half its `min`, rounded
    up (3 -> 2: looks at 3, 5, 7, ...)."""
    return -(-minimum // 2)


def trial_seed(seed: int, trial_id: str) -> int:
    """The weight-initialisation seed of one trial: a trial rerun after a crash, or run on another worker, starts
    exactly as it would have in one uninterrupted process."""
    return derive_seed(derive_seed(seed, "weights"), f"trial-{trial_id}")


VARIANCE_SOURCES = ("init", "order", "split")


def seed_run_seeds(study_seed: int, seed: int, varied: tuple[str, ...]) -> dict[str, int]:
    """What the seed run of evaluation seed `seed` draws each source of variance with (`evaluation.vary`): its own
    seed for a source varied, the study's one for a source held fixed. Initial weights and data order both vary
    with `seed` itself, as they did before they could be told apart; a split varied gets a seed derived from it.
    Held fixed, the split is the one the search used."""
    return {
        "init": seed if "init" in varied else derive_seed(study_seed, "init"),
        "order": seed if "order" in varied else derive_seed(study_seed, "order"),
        "split": derive_seed(seed, "split") if "split" in varied else derive_seed(study_seed, "split"),
    }
