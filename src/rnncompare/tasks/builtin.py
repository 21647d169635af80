"""Real data that ships with the project or with scikit-learn: no network at any point.

The UCR/UEA archive sets and the sunspot series are carried in `rnncompare/tasks/datasets/` (see its NOTICE.md for sources,
licences, citations and checksums), converted once from the files sktime 1.2.0 bundles and from statsmodels.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from rnncompare.core.errors import UserError
from rnncompare.tasks.base import RawTask, TaskInfo

DEFAULT_WINDOW = 20


def data_file(name: str):
    """A file of the project's bundled data (a Traversable path inside the installed package)."""
    return resources.files("rnncompare.tasks") / "datasets" / name


def _digits_images():
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float32), digits.target.astype(np.int64)


def digits(task_config, seed: int) -> RawTask:
    """8x8 handwritten digits read row by row: 8 steps of 8 pixel intensities."""
    x, y = _digits_images()
    return RawTask(
        x, y, "classification", "scikit-learn load_digits (UCI optical recognition of handwritten digits, 8x8)"
    )


def digits_pixels(task_config, seed: int) -> RawTask:
    """The same digits one pixel at a time: 64 steps of 1 value, a longer memory than row by row."""
    x, y = _digits_images()
    return RawTask(x.reshape(len(x), 64, 1), y, "classification", "scikit-learn load_digits, pixel by pixel (64 steps)")


def _archive(file_name: str, source: str, note: str) -> RawTask:
    with data_file(file_name).open("rb") as handle, np.load(handle, allow_pickle=False) as arrays:
        x_train, y_train, lengths_train = arrays["x_train"], arrays["y_train"], arrays["lengths_train"]
        x_test, y_test, lengths_test = arrays["x_test"], arrays["y_test"], arrays["lengths_test"]
    steps = max(x_train.shape[1], x_test.shape[1])
    x_train, x_test = (np.pad(x, ((0, 0), (0, steps - x.shape[1]), (0, 0))) for x in (x_train, x_test))
    variable = bool(np.any(lengths_train < steps) or np.any(lengths_test < steps))
    return RawTask(
        x_train,
        y_train,
        "classification",
        source,
        lengths=lengths_train if variable else None,
        fixed_test=(x_test, y_test, lengths_test if variable else None),
        note=note,
    )


def japanese_vowels(task_config, seed: int) -> RawTask:
    """UEA JapaneseVowels: 12 LPC cepstrum channels, 9 speakers, 7 to 29 steps (padded and masked)."""
    return _archive(
        "japanese_vowels.npz",
        "UEA archive JapaneseVowels (bundled; archive train/test split)",
        "The archive's own test split is kept; validation is drawn from its training split.",
    )


def italy_power(task_config, seed: int) -> RawTask:
    """UCR ItalyPowerDemand: 24 hourly loads of one day; class 1 October to March, class 2 April to September."""
    return _archive(
        "italy_power_demand.npz",
        "UCR archive ItalyPowerDemand (bundled; archive train/test split)",
        "The archive's own test split is kept; validation is drawn from its training split.",
    )


def sunspot_series() -> tuple[np.ndarray, np.ndarray]:
    """Years and yearly mean sunspot numbers, 1700 to 2008."""
    with data_file("sunspots.csv").open("r", encoding="utf-8") as handle:
        table = np.loadtxt(handle, delimiter=",", skiprows=1, dtype=np.float64)
    return table[:, 0].astype(int), table[:, 1].astype(np.float32)


def sunspots(task_config, seed: int) -> RawTask:
    """One-step forecasting of the yearly sunspot number from the `task.window` years before it.

    The series is standardized with the mean and standard deviation of its training part (the years whose
    targets are training targets), so errors are in units of that standard deviation.
    """
    window = task_config.window or DEFAULT_WINDOW
    _, values = sunspot_series()
    windows = len(values) - window
    if windows < 10:
        raise UserError(
            f"task.window: {window} leaves {max(windows, 0)} windows of {len(values)} years; "
            f"at most {len(values) - 10} is allowed"
        )
    held_out = task_config.validation_fraction + task_config.test_fraction
    train_end = window + int(round(windows * (1 - held_out)))
    mean, std = values[:train_end].mean(), values[:train_end].std()
    scaled = (values - mean) / std
    x = np.stack([scaled[start : start + window] for start in range(windows)])[:, :, None].astype(np.float32)
    y = scaled[window:].astype(np.float32)
    return RawTask(
        x,
        y,
        "regression",
        f"yearly sunspot numbers 1700-2008 (NGDC via statsmodels, bundled); window {window} years",
        order="time",
        scale=False,
        note=f"Targets standardized on the training years (std {std:.1f} sunspots): an MSE of 1.0 "
        "is an error of one standard deviation.",
    )


TASKS = {
    "digits": TaskInfo(digits, "classification", "8 steps x 8 features", "10 classes", "scikit-learn (offline)"),
    "digits_pixels": TaskInfo(
        digits_pixels, "classification", "64 steps x 1 feature", "10 classes", "scikit-learn (offline)"
    ),
    "japanese_vowels": TaskInfo(
        japanese_vowels, "classification", "7 to 29 steps x 12 features, masked", "9 classes", "UEA archive (bundled)"
    ),
    "italy_power": TaskInfo(
        italy_power, "classification", "24 steps x 1 feature", "2 classes", "UCR archive (bundled)"
    ),
    "sunspots": TaskInfo(
        sunspots,
        "regression",
        "task.window steps x 1 feature (default 20)",
        "next year's sunspot number",
        "NGDC yearly series (bundled)",
        options=("window",),
    ),
}
