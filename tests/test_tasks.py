import numpy as np
import pytest

from rnncompare.config import load_config
from rnncompare.errors import UserError
from rnncompare.tasks import derive_seed, load_task, split_stratified


def digits(seed=42, **overrides):
    config = load_config({"seed": seed}, {f"task.{k}": v for k, v in overrides.items()})
    return load_task(config.task, config.seed)


def test_digits_reads_as_8_steps_of_8_features():
    task = digits()
    assert task.x_train.shape[1:] == (8, 8) and task.x_train.dtype == np.float32
    assert task.y_train.dtype == np.int64
    assert task.split_sizes == {"train": 1257, "validation": 270, "test": 270}
    assert (task.input_spec.steps, task.input_spec.features, task.output_spec.classes) == (8, 8, 10)
    assert task.output_spec.class_names == tuple(str(i) for i in range(10))


def test_scaling_is_fitted_on_the_training_split_only():
    task = digits()
    mean = task.x_train.mean(axis=(0, 1))
    std = task.x_train.std(axis=(0, 1))
    assert np.allclose(mean, 0, atol=1e-5)
    assert np.allclose(std[std > 0], 1, atol=1e-4)
    assert not np.allclose(task.x_test.mean(axis=(0, 1)), 0, atol=1e-5)


def test_same_seed_same_data_other_seed_other_split():
    assert digits(7).digest() == digits(7).digest()
    assert digits(7).digest() != digits(8).digest()


def test_splits_are_disjoint_stratified_and_cover_everything():
    ids = np.arange(600)
    labels = np.repeat(np.arange(6), 100)
    x_train, y_train, x_val, y_val, x_test, y_test = split_stratified(ids, labels, 0.2, 0.2, seed=3)
    assert len(set(x_train) | set(x_val) | set(x_test)) == 600
    assert not (set(x_train) & set(x_val) or set(x_train) & set(x_test) or set(x_val) & set(x_test))
    assert np.bincount(y_test).tolist() == [20] * 6
    assert np.bincount(y_val).tolist() == [20] * 6


def test_too_few_samples_per_class_is_a_user_error():
    with pytest.raises(UserError, match=r"task: too few samples to split \(7 samples, smallest class 2\)"):
        split_stratified(np.arange(7), np.array([0, 0, 0, 0, 0, 1, 1]), 0.2, 0.2, seed=0)


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(42, "split") == derive_seed(42, "split")
    assert len({derive_seed(42, p) for p in ("split", "tuner", "weights")}) == 3
