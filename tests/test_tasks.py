import hashlib
from pathlib import Path

import numpy as np
import pytest

from rnncompare.config import TASK_NAMES, TaskConfig, load_config
from rnncompare.core.errors import UserError
from rnncompare.tasks import RawTask, load_task, registry, split
from rnncompare.tasks.builtin import data_file
from rnncompare.tasks.synthetic import REBER_SYMBOLS, is_embedded_reber

DATA = Path(__file__).resolve().parents[1] / "src" / "rnncompare" / "tasks" / "datasets"
SMALL = {"length": 12, "samples": 240}


def task(name="digits", seed=42, **options):
    config = load_config({"seed": seed, "task": {"name": name, **options}})
    return load_task(config.task, config.seed)


def test_digits_reads_as_8_steps_of_8_features():
    data = task()
    assert data.x_train.shape[1:] == (8, 8) and data.x_train.dtype == np.float32
    assert data.y_train.dtype == np.int64
    assert data.split_sizes == {"train": 1257, "validation": 270, "test": 270}
    assert (data.input_spec.steps, data.input_spec.features, data.output_spec.classes) == (8, 8, 10)
    assert data.output_spec.class_names == tuple(str(i) for i in range(10))


@pytest.mark.parametrize(
    "name, options, steps, features, kind, classes, masked",
    [
        ("digits_pixels", {}, 64, 1, "classification", 10, False),
        ("japanese_vowels", {}, 29, 12, "classification", 9, True),
        ("italy_power", {}, 24, 1, "classification", 2, False),
        ("sunspots", {"window": 15}, 15, 1, "regression", 0, False),
        ("adding", SMALL, 12, 2, "regression", 0, False),
        ("reset_sum", SMALL, 12, 2, "regression", 0, False),
        ("delayed_recall", SMALL, 14, 13, "classification", 8, False),
        ("reber", {"length": 20, "samples": 240}, 20, 7, "classification", 2, True),
    ],
)
def test_each_built_in_task_has_its_shape_dtypes_and_kind(name, options, steps, features, kind, classes, masked):
    data = task(name, **options)
    spec = data.input_spec
    assert (spec.steps, spec.features, spec.masked, data.kind, data.output_spec.classes) == (
        steps,
        features,
        masked,
        kind,
        classes,
    )
    for x, y in data.splits().values():
        assert x.shape[1:] == (steps, features) and x.dtype == np.float32
        assert y.dtype == (np.int64 if kind == "classification" else np.float32)
        assert np.all(np.isfinite(x))
    assert set(data.baseline) == ({"test_accuracy"} if kind == "classification" else {"test_mse", "test_mae"})


def test_the_registry_owns_task_names_and_options_and_the_config_reads_them():
    assert TASK_NAMES == tuple(registry())
    for name, info in registry().items():
        assert set(info.options) <= set(TaskConfig.model_fields), name
        assert set(info.required) <= set(info.options), name
    assert registry()["sunspots"].options == ("window",)
    assert registry()["csv"].required == ("path",)


@pytest.mark.parametrize(
    "name, options",
    [
        ("adding", SMALL),
        ("reset_sum", SMALL),
        ("delayed_recall", SMALL),
        ("reber", SMALL),
        ("digits", {}),
        ("sunspots", {}),
    ],
)
def test_same_seed_same_data_other_seed_other_data(name, options):
    assert task(name, seed=7, **options).digest() == task(name, seed=7, **options).digest()
    assert task(name, seed=7, **options).digest() != task(name, seed=8, **options).digest() or name == "sunspots"


def test_stratified_splits_are_disjoint_and_cover_everything():
    labels = np.repeat(np.arange(6), 100)
    raw = RawTask(np.arange(600)[:, None, None].astype(np.float32), labels, "classification", "ids")
    train, validation, test = split(raw, 0.2, 0.2, seed=3)
    ids = [set(part[0].ravel().tolist()) for part in (train, validation, test)]
    assert len(ids[0] | ids[1] | ids[2]) == 600
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert np.bincount(test[1]).tolist() == [20] * 6 and np.bincount(validation[1]).tolist() == [20] * 6


def test_forecasting_splits_keep_time_order():
    raw = RawTask(np.arange(100)[:, None, None].astype(np.float32), np.arange(100.0), "regression", "t", order="time")
    train, validation, test = split(raw, 0.2, 0.1, seed=3)
    assert train[1].max() < validation[1].min() and validation[1].max() < test[1].min()
    assert (len(train[1]), len(validation[1]), len(test[1])) == (70, 20, 10)


def test_sunspot_windows_end_where_their_target_begins_and_train_comes_first():
    data = task("sunspots", window=5)
    # The next window starts one year later: its last input is this window's target.
    assert np.allclose(data.x_train[1:, -1, 0], data.y_train[:-1])
    assert np.allclose(data.x_val[0, -1, 0], data.y_train[-1])


def test_scaling_is_fitted_on_the_training_split_only_and_leaves_padding_at_zero():
    data = task()
    assert np.allclose(data.x_train.mean(axis=(0, 1)), 0, atol=1e-5)
    assert not np.allclose(data.x_test.mean(axis=(0, 1)), 0, atol=1e-5)
    vowels = task("japanese_vowels")
    lengths = (np.abs(vowels.x_train).sum(axis=2) > 0).sum(axis=1)
    assert lengths.min() == 7 and lengths.max() <= 26
    real = np.arange(29)[None, :] < lengths[:, None]
    assert np.allclose(vowels.x_train[real].mean(axis=0), 0, atol=1e-4)
    assert np.all(vowels.x_train[~real] == 0)
    assert vowels.split_sizes["test"] == 370  # the archive's own test split


def test_adding_targets_are_the_sum_of_the_two_marked_values():
    data = task("adding", **SMALL)
    x, y = data.x_train, data.y_train
    assert np.all(x[:, :, 1].sum(axis=1) == 2)
    assert np.all(x[:, :6, 1].sum(axis=1) == 1)  # one marker in each half
    assert np.allclose((x[:, :, 0] * x[:, :, 1]).sum(axis=1), y, atol=1e-6)
    assert data.baseline["test_mse"] == pytest.approx(np.mean((data.y_test - data.y_train.mean()) ** 2), rel=1e-5)


def test_reset_sum_targets_are_the_sum_after_the_last_reset_which_is_in_the_second_half():
    data = task("reset_sum", **SMALL)
    x, y = data.x_train, data.y_train
    markers = x[:, :, 1]
    assert set(markers.sum(axis=1)) <= {2.0, 3.0, 4.0}  # the last reset and 1 to 3 before it
    last = 11 - np.argmax(markers[:, ::-1], axis=1)  # the last marked step of 12
    assert np.all(last >= 6) and np.all(last <= 10)  # in the second half, with one step or more after it
    after = np.arange(12)[None, :] > last[:, None]
    assert np.allclose((x[:, :, 0] * after).sum(axis=1), y, atol=1e-5)
    # what came before the last reset is large and must be forgotten: its total is not the target
    before = (x[:, :, 0] * ~after).sum(axis=1)
    assert before.mean() > y.mean()


def test_delayed_recall_label_is_the_first_symbol_and_the_cue_comes_last():
    data = task("delayed_recall", **SMALL)
    assert np.array_equal(data.x_train[:, 0, :8].argmax(axis=1), data.y_train)
    assert np.all(data.x_train[:, -1, -1] == 1) and np.all(data.x_train[:, :-1, -1] == 0)
    assert np.all(data.x_train[:, 1:-1, :8] == 0)  # distractors never show a recall symbol


def test_reber_strings_are_valid_exactly_when_labelled_valid():
    data = task("reber", **SMALL)
    valid = data.output_spec.class_names.index("valid")
    for x, y in zip(data.x_train, data.y_train):
        text = "".join(REBER_SYMBOLS[i] for i in x[x.sum(axis=1) > 0].argmax(axis=1))
        assert is_embedded_reber(text) == (y == valid), text


def test_bundled_files_match_their_checksums_in_the_notice():
    notice = (DATA / "NOTICE.md").read_text()
    for name in ("japanese_vowels.npz", "italy_power_demand.npz", "sunspots.csv"):
        digest = hashlib.sha256(data_file(name).read_bytes()).hexdigest()
        assert f"`{digest}`  {name}" in notice, name


# ---- your own data ------------------------------------------------------------------------------------------


def npz_file(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


def sequences(count=60, steps=5, features=3, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(count, steps, features)).astype(np.float32), np.arange(count) % classes


def test_npz_with_string_labels_and_lengths(tmp_path):
    x, y = sequences()
    names = np.array(["cat", "dog", "eel"])[y]
    lengths = np.arange(60) % 5 + 1
    data = task("npz", path=npz_file(tmp_path, x=x, y=names, lengths=lengths))
    assert data.output_spec.class_names == ("cat", "dog", "eel")
    assert data.input_spec.masked and data.input_spec.steps == 5
    assert sum(data.split_sizes.values()) == 60


def test_npz_with_ready_made_splits_keeps_them(tmp_path):
    x, y = sequences()
    path = npz_file(
        tmp_path, x_train=x[:40], y_train=y[:40], x_val=x[40:50], y_val=y[40:50], x_test=x[50:], y_test=y[50:]
    )
    data = task("npz", path=path)
    assert data.split_sizes == {"train": 40, "validation": 10, "test": 10}
    assert np.array_equal(data.y_test, y[50:])


def test_npz_with_fractional_targets_is_regression(tmp_path):
    x, _ = sequences()
    data = task("npz", path=npz_file(tmp_path, x=x, y=x[:, :, 0].sum(axis=1)))
    assert data.kind == "regression" and data.y_train.dtype == np.float32


def test_csv_long_format_with_variable_lengths(tmp_path):
    rows = ["id,step,a,b,label"]
    for sequence in range(30):
        for step in range(2 + sequence % 4):
            rows.append(f"s{sequence},{step},{sequence * 0.1 + step},{step},{'yes' if sequence % 2 else 'no'}")
    path = tmp_path / "long.csv"
    path.write_text("\n".join(rows))
    data = task("csv", path=str(path))
    assert (data.input_spec.steps, data.input_spec.features, data.input_spec.masked) == (5, 2, True)
    assert data.output_spec.class_names == ("no", "yes") and sum(data.split_sizes.values()) == 30


def test_csv_wide_format_and_renamed_label(tmp_path):
    rng = np.random.default_rng(1)
    lines = ["t0,t1,t2,t3,kind"] + [",".join(f"{v:.3f}" for v in rng.random(4)) + f",{i % 2}" for i in range(40)]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(lines))
    data = task("csv", path=str(path), layout="wide", columns={"label": "kind"})
    assert (data.input_spec.steps, data.input_spec.features) == (4, 1)
    assert data.output_spec.class_names == ("0", "1")


def test_text_csv_tokenizes_words_and_characters(tmp_path):
    texts = [("good fine great day", "pos"), ("bad awful poor day", "neg")] * 20
    path = tmp_path / "text.csv"
    path.write_text("text,label\n" + "\n".join(f"{t},{label}" for t, label in texts))
    words = task("text_csv", path=str(path))
    assert words.input_spec.vocabulary == 2 + 7 and words.input_spec.steps == 4
    assert words.x_train.dtype == np.int32 and words.x_train.ndim == 2
    characters = task("text_csv", path=str(path), tokens="characters", length=30)
    assert characters.input_spec.steps == 30 and characters.input_spec.vocabulary < 30


TEXTS_TO_TOKENIZE = [
    "The cat sat. The CAT sat!",
    "Don't re-use e-mail: (yes) [UNK] a_b #tag 50% x+y=z {k} ~t~ `q` @u |p|",
    "Éclair ÉCOLE Straße İstanbul «guillemets» naïve\u00a0nbsp\u2003em",
    "tabs\tand\nnewlines\r\n  and   runs ",
    "tie b tie a tie c b a c",
    "",
    "émoji 🙂 🙂 ok",
    "ΑΘΗΝΑ Ωmega",
]


@pytest.mark.parametrize("tokens", ["words", "characters"])
def test_text_ids_are_keras_text_vectorizations_without_tensorflow(tokens):
    import keras

    from rnncompare.tasks.prepare import MAX_TEXT_TOKENS, tokenize

    # more distinct words than the vocabulary holds, with tied counts at the cut
    train = TEXTS_TO_TOKENIZE + [f"w{index} w{index % 7}" for index in range(MAX_TEXT_TOKENS + 50)]
    unseen = ["the unseen cat", "ÉCOLE école ecole", "", "🙂!", "w20049 w3"]
    parts = tuple((np.array(texts, dtype=object), np.zeros(len(texts)), None) for texts in (train, unseen, train[:5]))
    layer = keras.layers.TextVectorization(
        max_tokens=MAX_TEXT_TOKENS, output_mode="int", split="character" if tokens == "characters" else "whitespace"
    )
    layer.adapt(train)
    expected_ids = [np.asarray(layer(texts.tolist())) for texts, _, _ in parts]
    longest = int((expected_ids[0] > 0).sum(axis=1).max())
    for length in (None, 3):
        fitted, vocabulary, steps = tokenize(parts, tokens, length)
        assert vocabulary == layer.vocabulary_size() == (MAX_TEXT_TOKENS if tokens == "words" else 56)
        assert steps == (length or longest)
        for (ids, _, lengths), expected in zip(fitted, expected_ids):
            width = min(steps, expected.shape[1])
            assert ids.dtype == np.int32 and ids.shape == (len(expected), steps)
            np.testing.assert_array_equal(ids[:, :width], expected[:, :width])
            assert not ids[:, width:].any()
            np.testing.assert_array_equal(lengths, (ids > 0).sum(axis=1))


def test_python_function_returns_arrays(tmp_path, monkeypatch):
    (tmp_path / "mydata.py").write_text(
        "import numpy as np\n"
        "def load():\n"
        "    rng = np.random.default_rng(0)\n"
        "    return {'x': rng.normal(size=(50, 6, 2)), 'y': rng.normal(size=50)}\n"
    )
    monkeypatch.chdir(tmp_path)
    data = task("python", function="mydata:load")
    assert data.kind == "regression" and data.input_spec.steps == 6


# ---- bad input: one line naming the file or option ------------------------------------------------------------


def bad_npz(tmp_path, case):
    x, y = sequences()
    if case == "rank":
        return npz_file(tmp_path, x=x[:, :, :, None], y=y)
    if case == "lengths":
        return npz_file(tmp_path, x=x, y=y[:50])
    if case == "nan":
        x[3, 2, 1] = np.nan
        return npz_file(tmp_path, x=x, y=y)
    if case == "unseen":
        return npz_file(tmp_path, x_train=x[:40], y_train=y[:40] % 2, x_test=x[40:], y_test=y[40:])
    if case == "few":
        return npz_file(tmp_path, x=x[:4], y=y[:4])
    if case == "empty":
        (tmp_path / "data.npz").write_bytes(b"")
        return str(tmp_path / "data.npz")
    if case == "garbage":
        (tmp_path / "data.npz").write_bytes(b"not a zip file at all")
        return str(tmp_path / "data.npz")
    if case == "keys":
        return npz_file(tmp_path, features=x, labels=y)
    if case == "one class":
        return npz_file(tmp_path, x=x, y=np.zeros(len(x), dtype=int))
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case, message",
    [
        ("rank", r"x must have rank 3 \(samples, steps, features\) or 2 \(samples, steps\), got shape \(60, 5, 3, 1\)"),
        ("lengths", r"x and y have different lengths \(60 and 50\)"),
        ("nan", r"x holds NaN or infinite values \(first at sample 3, step 2\)"),
        ("unseen", r"class '2' appears in the test split but not in the training split"),
        ("few", r"too few samples to split \(4 samples"),
        ("empty", r"data.npz: the file is empty"),
        ("garbage", r"data.npz: not a readable .npz file"),
        ("keys", r"needs arrays x and y, or x_train, y_train, x_test and y_test; arrays there: features, labels"),
        (
            "one class",
            r"task: the labels hold one class only \(0\) \(.*data.npz\); a classification needs two or more "
            r"\(targets to predict as numbers: set task.kind: regression\)",
        ),
    ],
)
def test_bad_npz_input_is_one_clear_line(tmp_path, case, message):
    with pytest.raises(UserError, match=message) as error:
        task("npz", path=bad_npz(tmp_path, case))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "content, options, message",
    [
        ("id,step,a,label\n", {}, r"long.csv: has a header but no rows"),
        ("id,a,label\n1,2,x\n", {}, r"task.columns: .*long.csv has no column 'step'; columns there: id, a, label"),
        ("id,step,a,label\n1,0,oops,x\n", {}, r"column 'a' holds a non-number \('oops', data row 1\)"),
        ("id,step,a,label\n1,0,1,x\n1,1,2,y\n", {}, r"sequence 1 has more than one label"),
        ("id,step,a,label\n1,0,1,x\n", {"features": ["b"]}, r"task.features: .*has no column 'b'"),
    ],
)
def test_bad_csv_input_is_one_clear_line(tmp_path, content, options, message):
    path = tmp_path / "long.csv"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        task("csv", path=str(path), **options)


@pytest.mark.parametrize(
    "task_keys, message",
    [
        ({"name": "mnist"}, r"task.name must be 'digits', 'digits_pixels', .*got 'mnist'"),
        (
            {"name": "digits", "window": 10},
            r"task.window does not apply to task digits \(digits takes no options; "
            r"window is for sunspots\), got 10",
        ),
        (
            {"name": "adding", "path": "x.npz"},
            r"task.path does not apply to task adding \(adding takes length, samples",
        ),
        ({"name": "npz"}, r"task npz needs task.path"),
        ({"name": "npz", "path": "missing.npz"}, r"task.path: missing.npz: file not found"),
        ({"name": "python", "function": "no_such_module:load"}, r"cannot import module 'no_such_module'"),
        ({"name": "python", "function": "not a function"}, r"task.function must match pattern"),
        ({"name": "adding", "length": 1}, r"task.length: adding needs at least 2 steps, got 1"),
    ],
)
def test_bad_task_options_are_one_clear_line(task_keys, message):
    with pytest.raises(UserError, match=message):
        task(**task_keys)


def test_an_objective_of_the_other_kind_is_refused():
    from rnncompare.orchestration.preflight import check_config_and_data

    with pytest.raises(
        UserError,
        match=r"tuner.objective: val_accuracy does not apply to task adding, a "
        r"regression task; use val_loss or val_mae",
    ):
        check_config_and_data({"task": {"name": "adding", **SMALL}, "tuner": {"objective": "val_accuracy"}})
