"""Synthetic memory tasks, generated from the study seed and sized by `task.length` and `task.samples`.

They exist to show what gating is for: each needs information from many steps back, at a distance the user picks.
"""

from __future__ import annotations

import numpy as np

from rnncompare.core.errors import UserError
from rnncompare.core.seeds import derive_seed
from rnncompare.tasks.base import RawTask, TaskInfo, pad_sequences

DEFAULT_SAMPLES = 2000
DEFAULT_LENGTHS = {"adding": 50, "delayed_recall": 20, "reber": 30, "reset_sum": 40}
RESETS = (2, 5)  # reset markers per sequence: from 2 to 4
RECALL_SYMBOLS = 8
DISTRACTOR_SYMBOLS = 4
REBER_SYMBOLS = "BTPSXVE"
# The Reber grammar (Reber 1967, as used by Hochreiter & Schmidhuber 1997): state -> {symbol: next state}.
REBER_TRANSITIONS = {
    0: {"T": 1, "P": 2},
    1: {"S": 1, "X": 3},
    2: {"T": 2, "V": 4},
    3: {"X": 2, "S": 5},
    4: {"P": 3, "V": 5},
}
REBER_END = 5


def _sizes(task_config, name: str, minimum_length: int) -> tuple[int, int]:
    length = task_config.length or DEFAULT_LENGTHS[name]
    samples = task_config.samples or DEFAULT_SAMPLES
    if length < minimum_length:
        raise UserError(f"task.length: {name} needs at least {minimum_length} steps, got {length}")
    return length, samples


def adding(task_config, seed: int) -> RawTask:
    """The adding problem (Hochreiter & Schmidhuber 1997): sum the two values whose marker is 1.

    Channel 0 holds values drawn uniformly from [0, 1); channel 1 marks exactly two steps, one in each half of
    the sequence, so the first marked value must be remembered for about half the length.
    """
    length, samples = _sizes(task_config, "adding", 2)
    rng = np.random.default_rng(derive_seed(seed, "task-adding"))
    values = rng.random((samples, length), dtype=np.float32)
    half = length // 2
    first = rng.integers(0, half, samples)
    second = rng.integers(half, length, samples)
    markers = np.zeros((samples, length), dtype=np.float32)
    markers[np.arange(samples), first] = 1.0
    markers[np.arange(samples), second] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = (values[np.arange(samples), first] + values[np.arange(samples), second]).astype(np.float32)
    return RawTask(
        x,
        y,
        "regression",
        f"adding problem, {length} steps, {samples} samples (generated)",
        scale=False,
        note="A model that always predicts the training mean scores the baseline MSE shown; "
        "solving the task means going well below it.",
    )


def reset_sum(task_config, seed: int) -> RawTask:
    """The sum of the values since the last reset marker: a running total that has to be overwritten.

    Channel 0 holds values drawn uniformly from [0, 1); channel 1 marks 2 to 4 reset steps, the last of them in
    the second half. The target is the sum of the values after the last reset, so everything before it, however
    large its total, must be forgotten: what an LSTM's forget gate is for (Gers et al. 2000), and what a cell
    without one can only approximate by writing "new minus old" through its recurrent input.
    """
    length, samples = _sizes(task_config, "reset_sum", 4)
    rng = np.random.default_rng(derive_seed(seed, "task-reset_sum"))
    values = rng.random((samples, length), dtype=np.float32)
    markers = np.zeros((samples, length), dtype=np.float32)
    half = length // 2
    last = rng.integers(half, length - 1, samples)  # the last reset: the segment after it is 1 to half steps long
    rows = np.arange(samples)
    markers[rows, last] = 1.0
    for count in range(RESETS[0] - 1, RESETS[1] - 1):  # 1 to 3 earlier resets anywhere before the last
        earlier = rng.integers(0, np.maximum(last, 1))
        chosen = rng.random(samples) < (1.0 if count == RESETS[0] - 1 else 0.5)
        markers[rows[chosen], earlier[chosen]] = 1.0
    after = np.arange(length)[None, :] > last[:, None]
    y = (values * after).sum(axis=1).astype(np.float32)
    return RawTask(
        np.stack([values, markers], axis=-1),
        y,
        "regression",
        f"reset sum, {length} steps, {samples} samples (generated)",
        scale=False,
        note="A model that always predicts the training mean scores the baseline MSE shown; a cell that cannot "
        "forget keeps every earlier segment's total in its state.",
    )


def delayed_recall(task_config, seed: int) -> RawTask:
    """Recall the symbol shown at step 1 after `task.length` distractor steps, when the cue appears.

    One-hot channels: 8 recall symbols, then 4 distractor symbols, then the cue. The class is the first symbol.
    """
    length, samples = _sizes(task_config, "delayed_recall", 1)
    rng = np.random.default_rng(derive_seed(seed, "task-delayed_recall"))
    features = RECALL_SYMBOLS + DISTRACTOR_SYMBOLS + 1
    x = np.zeros((samples, length + 2, features), dtype=np.float32)
    y = rng.integers(0, RECALL_SYMBOLS, samples)
    rows = np.arange(samples)
    x[rows, 0, y] = 1.0
    distractors = RECALL_SYMBOLS + rng.integers(0, DISTRACTOR_SYMBOLS, (samples, length))
    for step in range(length):
        x[rows, step + 1, distractors[:, step]] = 1.0
    x[:, -1, -1] = 1.0
    return RawTask(
        x,
        y.astype(np.int64),
        "classification",
        f"delayed recall, {RECALL_SYMBOLS} symbols after {length} distractor steps (generated)",
        scale=False,
    )


def _reber_inner(rng: np.random.Generator) -> str:
    symbols, state = ["B"], 0
    while state != REBER_END:
        options = REBER_TRANSITIONS[state]
        symbol = list(options)[rng.integers(0, 2)]
        symbols.append(symbol)
        state = options[symbol]
    return "".join(symbols) + "E"


def is_embedded_reber(text: str) -> bool:
    """Whether `text` belongs to the embedded Reber grammar: B, T or P, a Reber string, the same T or P, E."""
    if len(text) < 9 or text[0] != "B" or text[-1] != "E" or text[1] not in "TP" or text[-2] != text[1]:
        return False
    inner = text[2:-2]
    if inner[0] != "B" or inner[-1] != "E":
        return False
    state = 0
    for symbol in inner[1:-1]:
        state = REBER_TRANSITIONS.get(state, {}).get(symbol)
        if state is None:
            return False
    return state == REBER_END


def _corrupt(text: str, rng: np.random.Generator) -> str:
    # Half the corrupted strings break only the long-range rule (the closing T/P differs from the opening one);
    # the others get one symbol replaced anywhere. Either way the result is checked to be outside the grammar.
    while True:
        if rng.random() < 0.5:
            swapped = "P" if text[-2] == "T" else "T"
            candidate = text[:-2] + swapped + text[-1]
        else:
            position = int(rng.integers(1, len(text) - 1))
            replacement = REBER_SYMBOLS[rng.integers(0, len(REBER_SYMBOLS))]
            candidate = text[:position] + replacement + text[position + 1 :]
        if not is_embedded_reber(candidate):
            return candidate


def reber(task_config, seed: int) -> RawTask:
    """Embedded Reber grammar strings, valid (class "valid") against corrupted ones; one-hot characters.

    Strings longer than `task.length` are redrawn; shorter ones are zero-padded at the end and masked.
    """
    length, samples = _sizes(task_config, "reber", 9)
    rng = np.random.default_rng(derive_seed(seed, "task-reber"))
    texts, labels = [], []
    while len(texts) < samples:
        wrapper = "TP"[rng.integers(0, 2)]
        text = "B" + wrapper + _reber_inner(rng) + wrapper + "E"
        if len(text) > length:
            continue
        valid = len(texts) % 2 == 0
        texts.append(text if valid else _corrupt(text, rng))
        labels.append("valid" if valid else "corrupted")
    one_hot = np.eye(len(REBER_SYMBOLS), dtype=np.float32)
    x, lengths = pad_sequences([one_hot[[REBER_SYMBOLS.index(c) for c in text]] for text in texts], len(REBER_SYMBOLS))
    if x.shape[1] < length:
        x = np.pad(x, ((0, 0), (0, length - x.shape[1]), (0, 0)))
    return RawTask(
        x,
        np.asarray(labels),
        "classification",
        f"embedded Reber grammar, strings of at most {length} symbols (generated)",
        lengths=lengths,
        scale=False,
    )


TASKS = {
    "adding": TaskInfo(
        adding,
        "regression",
        "task.length steps x 2 features (default 50)",
        "sum of the two marked values",
        "generated from the study seed",
        options=("length", "samples"),
    ),
    "reset_sum": TaskInfo(
        reset_sum,
        "regression",
        "task.length steps x 2 features (default 40)",
        "sum of the values since the last reset marker",
        "generated from the study seed",
        options=("length", "samples"),
    ),
    "delayed_recall": TaskInfo(
        delayed_recall,
        "classification",
        "task.length + 2 steps x 13 features (default 20 + 2)",
        f"{RECALL_SYMBOLS} classes",
        "generated from the study seed",
        options=("length", "samples"),
    ),
    "reber": TaskInfo(
        reber,
        "classification",
        "up to task.length steps x 7 features, masked (default 30)",
        "2 classes (valid, corrupted)",
        "generated from the study seed",
        options=("length", "samples"),
    ),
}
