"""The part every task shares after loading: labels encoded, seeded splits, scaling or tokens, the baseline."""

from __future__ import annotations

import hashlib
import math
import re
import string
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from rnncompare.core.errors import UserError
from rnncompare.core.metrics import KindMetrics, for_kind
from rnncompare.core.seeds import derive_seed
from rnncompare.tasks.base import RawTask, Split

MAX_TEXT_TOKENS = 20_000  # vocabulary cap for text tasks, padding and out-of-vocabulary ids included
DEFAULT_EMBEDDING_DIM = 32


@dataclass(frozen=True)
class InputSpec:
    """What the model reads.

    Sequences of `steps` steps with `features` values each. `masked`: variable-length sequences, zero-padded at
    the end, so the model masks padding away from the cell. `vocabulary`: the steps are token ids (text), and the
    model starts with an `Embedding` of `embedding_dim` (id 0 is padding and is masked).
    """

    steps: int
    features: int
    masked: bool = False
    vocabulary: int | None = None
    embedding_dim: int | None = None


@dataclass(frozen=True)
class OutputSpec:
    """What the model predicts: one of `classes` classes, or one real value (regression)."""

    kind: Literal["classification", "regression"]
    classes: int = 0
    class_names: tuple[str, ...] = ()

    @property
    def metrics(self) -> KindMetrics:
        """The metric names this kind speaks in (accuracy, or MSE and MAE)."""
        return for_kind(self.kind)


@dataclass
class TaskData:
    """A task's splits and specs. x arrays are float32 (samples, steps, features), or int32 token ids
    (samples, steps) for text; y is int64 class indices or float32 targets."""

    name: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_spec: InputSpec
    output_spec: OutputSpec
    baseline: dict[str, float] = field(default_factory=dict)
    note: str = ""
    # how a seed run may draw another split (`evaluation.vary: split`): "resplit" (a new seeded partition),
    # "bootstrap" (the training split resampled with replacement, the others kept, where the split is fixed), or
    # None where neither gives the same model (a vocabulary built from the training split)
    resampling: Literal["resplit", "bootstrap"] | None = None
    split_sizes: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.split_sizes = {"train": len(self.x_train), "validation": len(self.x_val), "test": len(self.x_test)}

    @property
    def kind(self) -> str:
        """classification or regression."""
        return self.output_spec.kind

    def splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The three splits by name: train, validation, test."""
        return {
            "train": (self.x_train, self.y_train),
            "validation": (self.x_val, self.y_val),
            "test": (self.x_test, self.y_test),
        }

    def digest(self, split: str | None = None) -> str:
        """A short content hash of one split or of all, so runs on different data are never silently compared."""
        hasher = hashlib.sha256()
        for name, arrays in self.splits().items():
            if split in (None, name):
                for array in arrays:
                    hasher.update(np.ascontiguousarray(array).tobytes())
        return hasher.hexdigest()[:16]

    def describe(self) -> str:
        """One line for the terminal: sizes, shape, classes or target."""
        sizes = " / ".join(f"{count} {split}" for split, count in self.split_sizes.items())
        spec = self.input_spec
        shape = (
            f"{spec.steps} tokens (vocabulary {spec.vocabulary})"
            if spec.vocabulary
            else f"{spec.steps} steps x {spec.features} feature{'s' if spec.features != 1 else ''}"
            f"{' (masked padding)' if spec.masked else ''}"
        )
        target = f"{self.output_spec.classes} classes" if self.kind == "classification" else "regression"
        return f"{self.name}: {sizes}; {shape}; {target}"


def resampling(raw: RawTask) -> Literal["resplit", "bootstrap"] | None:
    """How a seed run may draw another split of `raw` (`TaskData.resampling`)."""
    if raw.text:
        return None
    if raw.order == "time" or raw.fixed_test is not None or raw.fixed_validation is not None:
        return "bootstrap"
    return "resplit"


def finish(name: str, raw: RawTask, task_config, seed: int, split_seed: int | None = None) -> TaskData:
    """The part every task shares: encode labels, split, tokenize or scale, compute the baseline. The split is
    drawn with `split_seed` where given, else with one derived from `seed` (which also made a synthetic task's
    data)."""
    class_names: tuple[str, ...] = ()
    if raw.kind == "classification":
        raw, class_names = _encode_labels(raw)
    else:
        raw = _as_targets(raw)
    train, validation, test = split(
        raw,
        task_config.validation_fraction,
        task_config.test_fraction,
        derive_seed(seed, "split") if split_seed is None else split_seed,
    )
    if raw.kind == "classification":
        _check_classes_seen(train[1], validation[1], test[1], class_names)
    masked = raw.lengths is not None
    if raw.text:
        (train, validation, test), vocabulary, steps = tokenize(
            (train, validation, test), task_config.tokens or "words", task_config.length
        )
        input_spec = InputSpec(
            steps=steps,
            features=1,
            masked=True,
            vocabulary=vocabulary,
            embedding_dim=task_config.embedding_dim or DEFAULT_EMBEDDING_DIM,
        )
    else:
        if raw.scale:
            mean, std = fit_feature_scaling(train[0], train[2])
            train, validation, test = (_apply_scaling(part, mean, std) for part in (train, validation, test))
        input_spec = InputSpec(steps=raw.x.shape[1], features=raw.x.shape[2], masked=masked)
    output_spec = OutputSpec(kind=raw.kind, classes=len(class_names), class_names=class_names)
    return TaskData(
        name=name,
        source=raw.source,
        x_train=train[0],
        y_train=train[1],
        x_val=validation[0],
        y_val=validation[1],
        x_test=test[0],
        y_test=test[1],
        input_spec=input_spec,
        output_spec=output_spec,
        baseline=constant_baseline(raw.kind, train[1], test[1]),
        note=raw.note,
        resampling=resampling(raw),
    )


def bootstrapped(task: TaskData, seed: int) -> TaskData:
    """`task` with its training split resampled with replacement (as many samples, drawn with `seed`), its
    validation and test splits kept: Bouthillier et al.'s bootstrap, for a task whose split is fixed."""
    rows = np.random.RandomState(seed).randint(0, len(task.x_train), len(task.x_train))
    return replace(task, x_train=task.x_train[rows], y_train=task.y_train[rows])


def _encode_labels(raw: RawTask) -> tuple[RawTask, tuple[str, ...]]:
    parts = [raw.y] + [fixed[1] for fixed in (raw.fixed_validation, raw.fixed_test) if fixed is not None]
    everything = np.concatenate([np.asarray(part) for part in parts])
    if everything.dtype.kind == "f" and not np.all(np.isfinite(everything)):
        raise UserError(f"task: labels hold NaN or infinite values ({raw.source})")
    labels = np.unique(everything)
    if len(labels) < 2:  # every model scores 1.0, and so does the constant predictor: no comparison
        only = _label_name(labels.tolist()[0]) if len(labels) else "none"
        raise UserError(
            f"task: the labels hold one class only ({only}) ({raw.source}); a classification needs two "
            "or more (targets to predict as numbers: set task.kind: regression)"
        )
    index = {label: position for position, label in enumerate(labels.tolist())}

    def encode(values: np.ndarray) -> np.ndarray:
        return np.asarray([index[value] for value in np.asarray(values).tolist()], dtype=np.int64)

    def encode_split(fixed: Split | None) -> Split | None:
        return None if fixed is None else (fixed[0], encode(fixed[1]), fixed[2])

    names = tuple(_label_name(label) for label in labels.tolist())
    encoded = RawTask(
        **{
            **raw.__dict__,
            "y": encode(raw.y),
            "fixed_test": encode_split(raw.fixed_test),
            "fixed_validation": encode_split(raw.fixed_validation),
        }
    )
    return encoded, names


def _label_name(label) -> str:
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label)


def _as_targets(raw: RawTask) -> RawTask:
    def convert(values: np.ndarray, where: str) -> np.ndarray:
        try:
            targets = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError):
            raise UserError(f"task: regression targets {where} must be numbers ({raw.source})") from None
        if not np.all(np.isfinite(targets)):
            raise UserError(f"task: regression targets {where} hold NaN or infinite values ({raw.source})")
        return targets

    def convert_split(fixed: Split | None, where: str) -> Split | None:
        return None if fixed is None else (fixed[0], convert(fixed[1], where), fixed[2])

    return RawTask(
        **{
            **raw.__dict__,
            "y": convert(raw.y, "y"),
            "fixed_test": convert_split(raw.fixed_test, "y_test"),
            "fixed_validation": convert_split(raw.fixed_validation, "y_val"),
        }
    )


def split(raw: RawTask, validation_fraction: float, test_fraction: float, seed: int) -> tuple[Split, Split, Split]:
    """Seeded train/validation/test splits: stratified for classification, in time order for forecasting.

    A test (or validation) split that comes with the data is kept; `validation_fraction` is then a share of the
    training data, and `test_fraction` is not used.
    """
    samples = (raw.x, raw.y, raw.lengths)
    if raw.fixed_test is not None and raw.fixed_validation is not None:
        return samples, raw.fixed_validation, raw.fixed_test
    if raw.fixed_test is not None:
        train, validation = _two_way(raw, samples, validation_fraction, seed)
        return train, validation, raw.fixed_test
    rest, test = _two_way(raw, samples, test_fraction, seed)
    if raw.fixed_validation is not None:
        return rest, raw.fixed_validation, test
    train, validation = _two_way(raw, rest, validation_fraction / (1 - test_fraction), seed)
    return train, validation, test


def _two_way(raw: RawTask, samples: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    x, y, lengths = samples
    count = len(y)
    held_out = max(1, math.ceil(count * fraction - 1e-9))  # as scikit-learn rounds a test share
    if count - held_out < 2:
        raise UserError(f"task: too few samples to split ({count}) with a held-out share of {fraction:.2f}")
    if raw.order == "time":
        cut = count - held_out
        keep, out = np.arange(cut), np.arange(cut, count)
    else:
        from sklearn.model_selection import train_test_split

        stratify = None
        if raw.kind == "classification":
            _, counts = np.unique(y, return_counts=True)
            if counts.min() < 3 or held_out < len(counts):
                raise UserError(
                    f"task: too few samples to split ({count} samples, {len(counts)} classes, smallest class "
                    f"{counts.min()}); each class needs at least 3 (train, validation, test)"
                )
            stratify = y
        keep, out = train_test_split(np.arange(count), test_size=held_out, stratify=stratify, random_state=seed)
        keep, out = np.sort(keep), np.sort(out)

    def take(indices: np.ndarray) -> Split:
        return x[indices], y[indices], None if lengths is None else lengths[indices]

    return take(keep), take(out)


def _check_classes_seen(y_train: np.ndarray, y_val: np.ndarray, y_test: np.ndarray, names: tuple[str, ...]) -> None:
    seen = set(np.unique(y_train).tolist())
    for where, labels in (("validation", y_val), ("test", y_test)):
        unseen = sorted(set(np.unique(labels).tolist()) - seen)
        if unseen:
            listed = ", ".join(repr(names[index]) for index in unseen)
            raise UserError(f"task: class {listed} appears in the {where} split but not in the training split")


def fit_feature_scaling(x_train: np.ndarray, lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over the training split's real steps (padding left out);
    constant features keep std 1."""
    if lengths is None:
        values = x_train.reshape(-1, x_train.shape[-1])
    else:
        real = np.arange(x_train.shape[1])[None, :] < lengths[:, None]
        values = x_train[real]
    mean = values.mean(axis=0).reshape(1, 1, -1)
    std = values.std(axis=0).reshape(1, 1, -1)
    std = np.where(std > 0, std, 1.0).astype(np.float32)
    return mean.astype(np.float32), std


def _apply_scaling(part: Split, mean: np.ndarray, std: np.ndarray) -> Split:
    x, y, lengths = part
    scaled = ((x - mean) / std).astype(np.float32)
    if lengths is not None:
        # Padding stays exactly zero: zero is the mask value the model looks for.
        scaled[np.arange(x.shape[1])[None, :] >= lengths[:, None]] = 0.0
    return scaled, y, lengths


# `TextVectorization`'s "lower_and_strip_punctuation" (TensorFlow's `strings.lower` changes ASCII letters only) and
# its "whitespace" split (TensorFlow's, on ASCII whitespace)
ASCII_LOWERCASE = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
ASCII_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
ASCII_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")
UNKNOWN_ID, FIRST_TOKEN_ID = 1, 2  # 0 is padding


def tokenize(parts: tuple[Split, Split, Split], tokens: str, length: int | None):
    """Token ids as Keras `TextVectorization` gives them with its defaults, its vocabulary learned from the
    training texts only.

    Keras's layer needs TensorFlow, whatever the backend, and importing it costs a text study under JAX seconds
    of CPU and most of a gigabyte. The rules are the layer's, and `tests/test_tasks.py` compares the
    ids with its own on texts with punctuation, capitals beyond ASCII, other whitespace and tied counts: lowercase
    ASCII letters and strip ASCII punctuation (TensorFlow's `lower` and the layer's pattern), split on runs of
    ASCII whitespace or into characters, the most frequent tokens first (ties in descending order of their UTF-8
    bytes), up to `MAX_TEXT_TOKENS` ids with 0 for padding and 1 for a token outside the vocabulary.

    Returns the three splits with int32 ids (samples, steps; 0 is padding, 1 out-of-vocabulary), the vocabulary
    size and the number of steps (`length`, or the longest training text).
    """
    split = [[_text_tokens(text, tokens) for text in part[0]] for part in parts]
    counts = Counter(token for text in split[0] for token in text)
    learned = sorted(counts, key=lambda token: (counts[token], token.encode()), reverse=True)
    ids = {token: index for index, token in enumerate(learned[: MAX_TEXT_TOKENS - FIRST_TOKEN_ID], FIRST_TOKEN_ID)}
    steps = max(length or max(map(len, split[0]), default=0), 1)
    fitted = []
    for (_, y, _), texts in zip(parts, split):
        padded = np.zeros((len(texts), steps), dtype=np.int32)
        for row, text in enumerate(texts):
            kept = text[:steps]
            padded[row, : len(kept)] = [ids.get(token, UNKNOWN_ID) for token in kept]
        fitted.append((padded, y, (padded > 0).sum(axis=1)))
    return tuple(fitted), FIRST_TOKEN_ID + len(ids), steps


def _text_tokens(text: str, tokens: str) -> list[str]:
    standardized = ASCII_PUNCTUATION.sub("", str(text).translate(ASCII_LOWERCASE))
    if tokens == "characters":
        return list(standardized)
    return [token for token in ASCII_WHITESPACE.split(standardized) if token]


def constant_baseline(kind: str, y_train: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
    """What a model that ignores its input scores on test: the training majority class, or the training mean."""
    if kind == "classification":
        majority = np.bincount(y_train).argmax()
        return {"test_accuracy": float(np.mean(y_test == majority))}
    y_train, y_test = y_train.astype(np.float64), y_test.astype(np.float64)
    mean = float(np.mean(y_train))
    return {"test_mse": float(np.mean((y_test - mean) ** 2)), "test_mae": float(np.mean(np.abs(y_test - mean)))}
