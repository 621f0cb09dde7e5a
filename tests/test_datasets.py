"""Tests for chainrule.datasets: the Dataset container, the generators, digits and CSV."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seed import DOSAGE, OBSERVED

from chainrule.datasets import (
    DATASETS,
    Dataset,
    Standardization,
    circles,
    digits,
    dosage,
    load_csv,
    load_dataset,
    moons,
    spirals,
    xor,
)
from chainrule.errors import ChainruleError

GENERATORS = {"moons": moons, "circles": circles, "spirals": spirals, "xor": xor}


def _rows(X: np.ndarray) -> np.ndarray:
    """The rows of X in lexicographic order, to compare point sets regardless of order."""
    return X[np.lexsort(X.T[::-1])]


# --- Dataset ---------------------------------------------------------------------------


def test_dosage_is_the_seed_example():
    data = dosage()
    assert data.name == "dosage"
    assert data.task == "regression"
    assert data.input_names == ("dosage",)
    assert data.target_name == "observed"
    assert data.inputs["dosage"].tolist() == DOSAGE
    assert data.target.tolist() == OBSERVED
    assert data.target.dtype == np.float64
    assert data.n == 3
    assert data.X.shape == (3, 1)
    assert data.num_classes is None


def test_columns_and_matrix_agree_and_are_read_only():
    data = Dataset({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]}, [0.5, 1.5, 2.5], "y", "t", "regression")
    assert data.input_names == ("a", "b")
    assert data.X.dtype == np.float64
    np.testing.assert_array_equal(data.X, [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_array_equal(data.X[:, 1], data.inputs["b"])
    assert data.inputs["a"].dtype == np.float64
    assert data.X is data.X  # computed once
    with pytest.raises(ValueError):
        data.X[0, 0] = 99.0
    with pytest.raises(ValueError):
        data.inputs["a"][0] = 99.0
    with pytest.raises(ValueError):
        data.target[0] = 99.0
    with pytest.raises(AttributeError):
        data.name = "other"  # frozen


def test_dataset_copies_its_inputs():
    column = np.array([1.0, 2.0])
    data = Dataset({"a": column}, [0.0, 1.0], "y", "t", "binary")
    column[0] = 50.0
    assert data.inputs["a"][0] == 1.0


def test_length_mismatch_names_column_and_both_lengths():
    with pytest.raises(ChainruleError, match=r"input 'b' has 2 values but target 'y' has 3"):
        Dataset({"a": [1, 2, 3], "b": [1, 2]}, [0, 1, 0], "y", "t", "regression")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_and_targets_rejected(bad):
    with pytest.raises(ChainruleError, match=r"input 'b' has a non-finite value .* at row 1"):
        Dataset({"a": [1, 2, 3], "b": [1, bad, 3]}, [0, 1, 0], "y", "t", "regression")
    with pytest.raises(ChainruleError, match=r"target 'y' has a non-finite value .* at row 2"):
        Dataset({"a": [1, 2, 3]}, [0, 1, bad], "y", "t", "regression")


def test_constructor_validation_messages():
    with pytest.raises(ChainruleError, match="task must be one of"):
        Dataset({"a": [1.0]}, [0.0], "y", "t", "classification")
    with pytest.raises(ChainruleError, match="at least one input"):
        Dataset({}, [0.0], "y", "t", "regression")
    with pytest.raises(ChainruleError, match="no rows"):
        Dataset({"a": []}, [], "y", "t", "regression")
    with pytest.raises(ChainruleError, match="'y' is both an input and the target"):
        Dataset({"y": [1.0]}, [0.0], "y", "t", "regression")
    with pytest.raises(ChainruleError, match=r"input 'a' must be a 1-D list.*\(2, 1\)"):
        Dataset({"a": [[1.0], [2.0]]}, [0.0, 1.0], "y", "t", "regression")
    with pytest.raises(ChainruleError, match="input 'a' is not numeric"):
        Dataset({"a": ["x", "y"]}, [0.0, 1.0], "y", "t", "regression")
    with pytest.raises(ChainruleError, match="binary task needs targets 0 or 1, found 2 at row 1"):
        Dataset({"a": [1.0, 2.0]}, [0.0, 2.0], "y", "t", "binary")
    with pytest.raises(ChainruleError, match="whole numbers.*found 1.5 at row 0"):
        Dataset({"a": [1.0, 2.0]}, [1.5, 2.0], "y", "t", "multiclass")
    with pytest.raises(ChainruleError, match="whole numbers.*found -1"):
        Dataset({"a": [1.0, 2.0]}, [-1, 2], "y", "t", "multiclass")
    with pytest.raises(ChainruleError, match="label 4 needs at least 5 classes"):
        Dataset({"a": [1.0, 2.0]}, [0, 4], "y", "t", "multiclass", num_classes=3)


def test_multiclass_targets_are_int64_and_count_classes():
    data = Dataset({"a": [1.0, 2.0, 3.0]}, [0.0, 2.0, 1.0], "y", "t", "multiclass")
    assert data.target.dtype == np.int64
    assert data.target.tolist() == [0, 2, 1]
    assert data.num_classes == 3
    assert Dataset({"a": [1.0]}, [0], "y", "t", "multiclass", num_classes=7).num_classes == 7
    assert Dataset({"a": [1.0]}, [1.0], "y", "t", "binary").num_classes == 2


def test_from_matrix():
    X = np.arange(12.0).reshape(4, 3)
    data = Dataset.from_matrix(X, [0, 1, 1, 0], ["u", "v", "w"], "label", "m", "binary")
    assert data.input_names == ("u", "v", "w")
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.inputs["v"], [1.0, 4.0, 7.0, 10.0])
    with pytest.raises(ChainruleError, match="3 columns but 2 input names"):
        Dataset.from_matrix(X, [0, 1, 1, 0], ["u", "v"], "label", "m", "binary")
    with pytest.raises(ChainruleError, match="'u' appears twice"):
        Dataset.from_matrix(X, [0, 1, 1, 0], ["u", "v", "u"], "label", "m", "binary")
    with pytest.raises(ChainruleError, match=r"must be 2-D.*\(12,\)"):
        Dataset.from_matrix(X.ravel(), [0, 1, 1, 0], ["u"], "label", "m", "binary")


def test_repr_is_short():
    text = repr(moons(n=10))
    assert text.startswith("Dataset(name='moons', task='binary', n=10")
    assert "x1, x2" in text
    wide = Dataset.from_matrix(
        np.zeros((2, 10)), [0, 1], [f"p{i}" for i in range(10)], "d", "w", "binary"
    )
    assert "p0, p1, ..., p9] (10)" in repr(wide)


# --- subset and split ------------------------------------------------------------------


def test_subset_by_indices_and_mask():
    data = Dataset({"a": [10.0, 11.0, 12.0, 13.0]}, [0, 1, 2, 1], "y", "t", "multiclass")
    part = data.subset([3, 0])
    assert part.inputs["a"].tolist() == [13.0, 10.0]
    assert part.target.tolist() == [1, 0]
    assert part.num_classes == 3  # kept even though class 2 is absent
    masked = data.subset(np.array([True, False, True, False]))
    assert masked.inputs["a"].tolist() == [10.0, 12.0]
    with pytest.raises(ChainruleError, match="row index 4 is out of range"):
        data.subset([0, 4])
    with pytest.raises(ChainruleError, match="out of range"):
        data.subset([-1])
    with pytest.raises(ChainruleError, match="selects no rows"):
        data.subset([])
    with pytest.raises(ChainruleError, match="integers"):
        data.subset([0.5])
    with pytest.raises(ChainruleError, match="boolean row mask must have shape"):
        data.subset([True, False])


@pytest.mark.parametrize(
    ("n", "fraction", "n_test"), [(200, 0.2, 40), (10, 0.25, 2), (3, 0.01, 1), (3, 0.99, 2)]
)
def test_split_sizes(n, fraction, n_test):
    data = Dataset({"i": np.arange(n)}, np.zeros(n), "y", "t", "regression")
    train, test = data.split(test_fraction=fraction, seed=1)
    assert (train.n, test.n) == (n - n_test, n_test)


def test_split_is_a_seeded_disjoint_partition():
    n = 100
    data = Dataset({"i": np.arange(n)}, np.arange(n) % 2, "y", "t", "binary")
    train, test = data.split(0.3, seed=5)
    train_ids, test_ids = train.inputs["i"], test.inputs["i"]
    assert not set(train_ids) & set(test_ids)
    assert sorted([*train_ids, *test_ids]) == list(range(n))
    # rows stay intact: the target moves with its inputs
    np.testing.assert_array_equal(train.target, train_ids % 2)
    # shuffled, not just the first rows
    assert test_ids.tolist() != list(range(30))
    again_train, again_test = data.split(0.3, seed=5)
    np.testing.assert_array_equal(again_test.X, test.X)
    np.testing.assert_array_equal(again_train.X, train.X)
    _, other_test = data.split(0.3, seed=6)
    assert set(other_test.inputs["i"]) != set(test_ids)


def test_split_rejects_bad_arguments():
    with pytest.raises(ChainruleError, match="test_fraction must be between 0 and 1"):
        moons().split(test_fraction=1.0)
    with pytest.raises(ChainruleError, match="test_fraction"):
        moons().split(test_fraction=0)
    with pytest.raises(ChainruleError, match="cannot split 1 row"):
        Dataset({"a": [1.0]}, [0.0], "y", "t", "regression").split()


# --- standardization -------------------------------------------------------------------


def test_standardized_train_has_mean_0_std_1_and_test_uses_train_stats():
    data = Dataset.from_matrix(
        np.random.default_rng(0).normal([5.0, -3.0], [2.0, 0.1], size=(300, 2)),
        np.zeros(300),
        ["a", "b"],
        "y",
        "s",
        "regression",
    )
    train, test = data.split(0.25, seed=0)
    train_std, stats = train.standardized()
    np.testing.assert_allclose(train_std.X.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(train_std.X.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(stats.mean, train.X.mean(axis=0))
    np.testing.assert_allclose(stats.std, train.X.std(axis=0))
    test_std, same = test.standardized(stats)
    assert same is stats
    np.testing.assert_allclose(test_std.X, (test.X - train.X.mean(0)) / train.X.std(0))
    # the test set's own statistics were not used
    assert abs(test_std.X.mean(axis=0)).max() > 1e-6
    np.testing.assert_array_equal(test_std.target, test.target)
    np.testing.assert_allclose(stats.inverse_transform(test_std.X), test.X)


def test_standardization_keeps_constant_inputs_finite():
    data = Dataset(
        {"c": [0.1, 0.1, 0.1], "v": [1.0, 2.0, 3.0]}, [0.0, 1.0, 0.0], "y", "t", "binary"
    )
    scaled, stats = data.standardized()
    assert stats.std.tolist()[0] == 1.0
    np.testing.assert_allclose(scaled.inputs["c"], 0.0, atol=1e-15)
    assert stats.as_dict()["v"]["mean"] == 2.0


def test_standardization_rejects_other_inputs():
    _, stats = moons(n=20).standardized()
    with pytest.raises(ChainruleError, match=r"its inputs \(dosage\) differ"):
        dosage().standardized(stats)
    with pytest.raises(ChainruleError, match="2 columns"):
        stats.transform(np.zeros((3, 3)))
    with pytest.raises(ChainruleError, match="stds positive"):
        Standardization(("a",), [0.0], [0.0])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=2, max_size=40))
def test_standardization_property(values):
    data = Dataset({"a": values}, np.zeros(len(values)), "y", "t", "regression")
    scaled, stats = data.standardized()
    assert np.isfinite(scaled.X).all()
    # exact up to the rounding of the mean, which only matters when the spread is
    # a few ulps of the values' magnitude, or subnormal (below 2.2e-308 a float has too
    # few digits to hold the mean of [0, 5e-324])
    spread = max(values) - min(values)
    if spread > 1e-9 * max(map(abs, values)) and spread > np.finfo(np.float64).tiny:
        assert abs(scaled.X.mean()) < 1e-6
        assert abs(scaled.X.std() - 1.0) < 1e-6
    np.testing.assert_allclose(stats.inverse_transform(scaled.X), data.X, atol=1e-6)


def test_standardization_of_tiny_and_huge_values():
    for values in ([0.0, 2e-248], [1e-300, 3e-300, 2e-300], [1e200, -1e200, 3e200]):
        scaled, _ = Dataset(
            {"a": values}, np.zeros(len(values)), "y", "t", "regression"
        ).standardized()
        np.testing.assert_allclose(scaled.X.std(), 1.0, rtol=1e-12)
        np.testing.assert_allclose(scaled.X.mean(), 0.0, atol=1e-12)


# --- generators ------------------------------------------------------------------------


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("n", [2, 7, 200])
def test_generator_shape_names_and_balance(name, n):
    data = GENERATORS[name](n=n)
    assert data.name == name
    assert data.task == "binary"
    assert data.input_names == ("x1", "x2")
    assert data.target_name == "label"
    assert data.X.shape == (n, 2)
    assert data.X.dtype == np.float64 and data.target.dtype == np.float64
    assert set(np.unique(data.target)) == {0.0, 1.0}
    assert int(data.target.sum()) == n - n // 2  # classes differ by at most one point
    assert np.isfinite(data.X).all()


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_seeds_reproduce_and_differ(name):
    make = GENERATORS[name]
    first, again, other = make(seed=3), make(seed=3), make(seed=4)
    np.testing.assert_array_equal(first.X, again.X)
    np.testing.assert_array_equal(first.target, again.target)
    assert not np.array_equal(first.X, other.X)
    # shuffled: the classes are not in two blocks
    assert 0.0 in first.target[: first.n // 2] and 1.0 in first.target[: first.n // 2]


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_noise_is_gaussian_with_the_given_std(name):
    make = GENERATORS[name]
    clean, noisy = make(n=4000, noise=0.0, seed=1), make(n=4000, noise=0.2, seed=1)
    np.testing.assert_array_equal(clean.target, noisy.target)  # same shuffle
    difference = noisy.X - clean.X
    assert abs(difference.mean()) < 0.01
    assert abs(difference.std() - 0.2) < 0.01


def test_moons_lie_on_their_half_circles():
    data = moons(n=101, noise=0.0)
    upper, lower = data.X[data.target == 0], data.X[data.target == 1]
    assert len(upper) == 50 and len(lower) == 51
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0)
    assert (upper[:, 1] >= -1e-12).all()
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0)
    assert (lower[:, 1] <= 0.5 + 1e-12).all()
    assert data.X[:, 0].min() == pytest.approx(-1.0) and data.X[:, 0].max() == pytest.approx(2.0)


def test_circles_radii_and_factor():
    data = circles(n=60, noise=0.0, factor=0.3)
    radius = np.hypot(data.X[:, 0], data.X[:, 1])
    np.testing.assert_allclose(radius[data.target == 0], 1.0)
    np.testing.assert_allclose(radius[data.target == 1], 0.3)
    noisy = circles(n=400, noise=0.05, seed=2)
    radius = np.hypot(noisy.X[:, 0], noisy.X[:, 1])
    # the default noise keeps the circles apart on average
    assert radius[noisy.target == 0].mean() == pytest.approx(1.0, abs=0.02)
    assert radius[noisy.target == 1].mean() == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ChainruleError, match="factor must be between 0 and 1"):
        circles(factor=1.5)


def test_spirals_are_two_interleaved_arms():
    data = spirals(n=200, noise=0.0)
    arm0, arm1 = data.X[data.target == 0], data.X[data.target == 1]
    # arm 1 is arm 0 turned by half a circle
    np.testing.assert_allclose(_rows(arm1), _rows(-arm0), atol=1e-12)
    radius = np.hypot(arm0[:, 0], arm0[:, 1])
    assert radius.min() > 0 and radius.max() == pytest.approx(2.0)
    # along an arm the angle grows with the radius: 1.75 turns in total
    order = np.argsort(radius)
    turns = np.unwrap(np.arctan2(arm0[order, 1], arm0[order, 0]))
    assert np.all(np.diff(turns) > 0)
    assert (turns[-1] - turns[0]) / (2 * np.pi) == pytest.approx(1.75, abs=0.02)
    # a point's nearest neighbour (other than itself) is on its own arm
    distances = np.linalg.norm(data.X[:, None, :] - data.X[None, :, :], axis=-1)
    np.fill_diagonal(distances, np.inf)
    nearest = distances.argmin(axis=1)
    assert (data.target[nearest] == data.target).mean() > 0.95


def test_xor_labels_follow_the_quadrants():
    data = xor(n=500, noise=0.0, seed=7)
    product = data.X[:, 0] * data.X[:, 1]
    np.testing.assert_array_equal(data.target == 1.0, product < 0)
    assert np.abs(data.X).min() >= 0.05 and np.abs(data.X).max() <= 1.0
    # every quadrant is populated
    quadrants = set(zip(np.sign(data.X[:, 0]), np.sign(data.X[:, 1]), strict=True))
    assert quadrants == {(1, 1), (1, -1), (-1, 1), (-1, -1)}
    # with noise, most labels still match the quadrant of the noisy point
    noisy = xor(n=500, noise=0.1, seed=7)
    agree = (noisy.target == 1.0) == (noisy.X[:, 0] * noisy.X[:, 1] < 0)
    assert 0.85 < agree.mean() < 1.0


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_option_errors(name):
    make = GENERATORS[name]
    with pytest.raises(ChainruleError, match=f"data set '{name}': n must be an integer >= 2"):
        make(n=1)
    with pytest.raises(ChainruleError, match="n must be an integer"):
        make(n=10.5)
    with pytest.raises(ChainruleError, match="noise must be a finite number >= 0"):
        make(noise=-0.1)
    with pytest.raises(ChainruleError, match="noise"):
        make(noise=float("nan"))


# --- registry --------------------------------------------------------------------------


def test_registry_and_load_dataset():
    assert set(DATASETS) == {"dosage", "moons", "circles", "spirals", "xor", "iris", "digits"}
    data = load_dataset("spirals", n=30, noise=0.0, seed=2)
    np.testing.assert_array_equal(data.X, spirals(n=30, noise=0.0, seed=2).X)
    assert load_dataset("dosage").target.tolist() == OBSERVED


def test_load_dataset_unknown_name_lists_the_known_ones():
    with pytest.raises(ChainruleError, match="unknown data set 'moon'") as info:
        load_dataset("moon")
    for name in DATASETS:
        assert name in str(info.value)


def test_load_dataset_unknown_option_lists_the_options():
    with pytest.raises(ChainruleError, match=r"'moons' has no option 'factor'.*n, noise, seed"):
        load_dataset("moons", factor=0.3)
    with pytest.raises(ChainruleError, match="options are: none"):
        load_dataset("dosage", n=3)


def test_importing_datasets_does_not_import_sklearn():
    src = Path(__file__).resolve().parents[1] / "src"
    code = "import sys, chainrule.datasets; print('sklearn' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(src)},
    )
    assert result.stdout.strip() == "False"


# --- digits ----------------------------------------------------------------------------


def test_digits():
    pytest.importorskip("sklearn")
    data = load_dataset("digits")
    assert data.name == "digits" and data.task == "multiclass"
    assert data.X.shape == (1797, 64)
    assert data.input_names[0] == "p0" and data.input_names[-1] == "p63"
    assert data.target_name == "digit"
    assert data.target.dtype == np.int64
    assert data.num_classes == 10
    assert set(data.target.tolist()) == set(range(10))
    assert data.X.min() == 0.0 and data.X.max() == 1.0
    assert np.bincount(data.target).min() >= 170  # about 180 of each digit
    again, other = digits(seed=0), digits(seed=1)
    np.testing.assert_array_equal(again.X, data.X)
    assert not np.array_equal(other.target, data.target)
    # the same images, only in another order
    np.testing.assert_array_equal(np.sort(other.X.sum(axis=1)), np.sort(data.X.sum(axis=1)))
    train, test = data.split(0.2)
    assert test.n == 359 and train.num_classes == test.num_classes == 10


def test_digits_without_sklearn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ChainruleError, match=r"pip install 'chainrule\[data\]'"):
        digits()


def test_iris():
    pytest.importorskip("sklearn")
    data = load_dataset("iris")
    assert data.name == "iris" and data.task == "multiclass" and data.num_classes == 3
    assert data.X.shape == (150, 4) and data.target_name == "species"
    assert data.input_names == ("sepal_length", "sepal_width", "petal_length", "petal_width")
    assert np.bincount(data.target).tolist() == [50, 50, 50]
    # Fisher's first flower, in scikit-learn's order: a setosa 5.1 x 3.5 / 1.4 x 0.2 cm
    assert data.X[0].tolist() == [5.1, 3.5, 1.4, 0.2] and data.target[0] == 0
    shuffled = load_dataset("iris", seed=0)
    assert not np.array_equal(shuffled.target, data.target)
    np.testing.assert_array_equal(np.sort(shuffled.X, axis=0), np.sort(data.X, axis=0))


def test_iris_without_sklearn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ChainruleError, match=r"iris data set needs scikit-learn"):
        load_dataset("iris")


# --- CSV -------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_csv_defaults(tmp_path):
    path = _write(tmp_path, "dosage,observed\n0,0\n0.5,1\n\n1,0\n\n")
    data = load_csv(path)
    assert data.name == "data"
    assert data.input_names == ("dosage",)
    assert data.target_name == "observed"
    assert data.inputs["dosage"].tolist() == DOSAGE
    assert data.target.tolist() == OBSERVED
    assert data.task == "binary"


def test_load_csv_chooses_columns_and_ignores_unused_text(tmp_path):
    text = "id,height, weight ,age\nann,1.6,60,31\nbob,1.8, 80 ,45\ncid,1.7,70,12\n"
    path = _write(tmp_path, text, "people.csv")
    data = load_csv(path, inputs=["weight", "height"], target="age", name="ages")
    assert data.name == "ages"
    assert data.input_names == ("weight", "height")
    np.testing.assert_array_equal(data.X, [[60, 1.6], [80, 1.8], [70, 1.7]])
    assert data.target.tolist() == [31.0, 45.0, 12.0]
    assert data.task == "regression"
    # by default every other column is an input, so the text column 'id' is read too
    with pytest.raises(ChainruleError, match=r"line 2, column 'id': 'ann' is not a number"):
        load_csv(path, target="age")


def test_load_csv_handles_quotes_and_bom(tmp_path):
    path = tmp_path / "q.csv"
    path.write_bytes('\ufeff"x","y"\n"1.5","2"\n3,4\n'.encode())
    data = load_csv(path)
    assert data.input_names == ("x",) and data.target.tolist() == [2.0, 4.0]


def test_csv_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(ChainruleError, match=r"nope\.csv: no such file"):
        load_csv(path)


def test_csv_directory(tmp_path):
    with pytest.raises(ChainruleError, match="is a directory"):
        load_csv(tmp_path)


@pytest.mark.parametrize("text", ["", "\n\n", "   \n"])
def test_csv_empty_file(tmp_path, text):
    path = _write(tmp_path, text, "empty.csv")
    with pytest.raises(ChainruleError, match=r"empty\.csv: the file is empty"):
        load_csv(path)


# What load_csv refuses in data.csv: (the file's text, load_csv's options, the message as
# a regular expression).
CSV_REFUSALS = {
    "header-without-rows": ("a,b\n\n", {}, r"data\.csv: has a header row but no data rows"),
    "without-header": ("1,2\n3,4\n", {}, r"data\.csv: line 1 should be a header row"),
    "header-column-without-name": (
        "a,,c\n1,2,3\n",
        {},
        r"line 1: column 2 of the header has no name",
    ),
    "header-name-twice": ("a,b,a\n1,2,3\n", {}, r"line 1: column name 'a' appears twice"),
    "missing-target-column-lists-columns": (
        "a,b,c\n1,2,3\n",
        {"target": "z"},
        r"data\.csv: no column named 'z'; the columns are: a, b, c",
    ),
    "missing-input-columns-lists-columns": (
        "a,b,c\n1,2,3\n",
        {"inputs": ["a", "x", "y"]},
        r"data\.csv: no column named 'x', 'y'; the columns are: a, b, c",
    ),
    "input-and-target": (
        "a,b,c\n1,2,3\n",
        {"inputs": ["a", "c"]},
        "'c' is both an input and the target",
    ),
    "input-listed-twice": ("a,b,c\n1,2,3\n", {"inputs": ["a", "a"]}, "'a' is listed twice"),
    "no-inputs": ("a,b,c\n1,2,3\n", {"inputs": []}, "list of input columns is empty"),
    "only-the-target-column": ("y\n1\n2\n", {}, "has only the target column 'y'"),
    "line-numbers-count-blank-lines": (
        "x,y\n\n1,2\n\n3,oops\n",
        {},
        r"line 5, column 'y': 'oops' is not a number",
    ),
    "empty-cell": ("x,y\n1,2\n3,\n", {}, r"data\.csv: line 3, column 'y': empty cell"),
    "semicolon-hint-header": ("x;y\n1;2\n", {}, r"only the target column 'x;y'.*separated by ';'"),
    "semicolon-hint-cell": (
        "a,x;y\n0,1;2\n",
        {},
        r"line 2, column 'x;y': '1;2' is not a number.*';'",
    ),
    "non-finite-target": (
        "x,y\n1,2\n3,nan\n",
        {},
        r"line 3, column 'y': 'nan' is not a finite number",
    ),
}


@pytest.mark.parametrize(
    ("text", "options", "message"), list(CSV_REFUSALS.values()), ids=list(CSV_REFUSALS)
)
def test_csv_refusals(tmp_path, text, options, message):
    path = _write(tmp_path, text)
    with pytest.raises(ChainruleError, match=message):
        load_csv(path, **options)


def test_csv_non_numeric_cell(tmp_path):
    path = _write(tmp_path, "x1,x2,label\n0.1,0.2,0\n0.3,abc,1\n0.5,0.6,1\n", "bad.csv")
    with pytest.raises(ChainruleError) as info:
        load_csv(path)
    message = str(info.value)
    assert message == f"{path}: line 3, column 'x2': 'abc' is not a number"


@pytest.mark.parametrize("bad", ["nan", "NaN", "inf", "-Infinity", "1e999"])
def test_csv_non_finite_cell(tmp_path, bad):
    path = _write(tmp_path, f"x1,x2,y\n1,2,3\n4,5,6\n7,{bad},9\n")
    with pytest.raises(ChainruleError) as info:
        load_csv(path)
    assert str(info.value) == f"{path}: line 4, column 'x2': '{bad}' is not a finite number"


@pytest.mark.parametrize(("row", "found"), [("1,2", 2), ("1,2,3,4", 4)])
def test_csv_ragged_rows(tmp_path, row, found):
    path = _write(tmp_path, f"a,b,c\n1,2,3\n{row}\n7,8,9\n", "ragged.csv")
    with pytest.raises(ChainruleError) as info:
        load_csv(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line 3 has {found} fields but the header has 3")


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("x,y\n1,2\n\xe9,3\n".encode("latin-1"))
    with pytest.raises(ChainruleError, match=r"latin\.csv: is not UTF-8 text"):
        load_csv(path)


def test_csv_integer_targets_stay_float_regression(tmp_path):
    path = _write(tmp_path, "x,y\n1,0\n2,1\n3,2\n")
    data = load_csv(path)
    assert data.task == "regression"
    assert data.target.dtype == np.float64
    assert data.target.tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("name", ["moons", "circles", "spirals", "xor"])
def test_noise_so_large_that_points_overflow_is_refused(name):
    # 4.8e307 times a normal draw overflows the coordinates to infinity.
    with pytest.raises(ChainruleError, match="noise must be at most 1000"):
        load_dataset(name, noise=4.765540848589749e307)
