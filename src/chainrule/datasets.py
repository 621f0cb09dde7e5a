"""Data sets: the seed example, 2-D toy problems, iris, handwritten digits and CSV files.

A :class:`Dataset` holds named input columns and one named target column, so that a
formula model can refer to its inputs by the names the user wrote (``dosage``, ``x1``)
and the explainer can print them. Everything here is plain numpy; scikit-learn is only
imported inside :func:`iris` and :func:`digits`.

Built-in data sets (no download, every one seeded):

- ``dosage``: the three points of StatQuest's backpropagation example (the seed).
- ``moons``, ``circles``, ``spirals``, ``xor``: two-class problems in the plane, like the
  ones on TensorFlow Playground (https://playground.tensorflow.org, ``src/dataset.ts``)
  and scikit-learn's ``make_moons`` / ``make_circles``, written here from scratch.
- ``iris``: Fisher's 150 iris flowers shipped with scikit-learn (three species).
- ``digits``: the 8x8 handwritten digits shipped with scikit-learn (UCI optdigits test set).

Example:

>>> data = load_dataset("moons", n=100, seed=1)
>>> data.X.shape, data.input_names, data.task
((100, 2), ('x1', 'x2'), 'binary')
>>> train, test = data.split(test_fraction=0.2, seed=0)
>>> train, stats = train.standardized()
>>> test, _ = test.standardized(stats)  # the test set uses the training set's statistics
"""

from __future__ import annotations

import csv
import inspect
import io
import math
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from chainrule.errors import ChainruleError
from chainrule.text import normal_name

__all__ = [
    "DATASETS",
    "TASKS",
    "Dataset",
    "Standardization",
    "circles",
    "digits",
    "dosage",
    "iris",
    "load_csv",
    "load_dataset",
    "moons",
    "spirals",
    "xor",
]

#: The kinds of learning problem a data set can pose.
TASKS: tuple[str, ...] = ("regression", "binary", "multiclass")


# ---------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Named input columns and one named target column, all of the same length ``n``.

    ``inputs`` maps each input name to a float64 vector of length ``n`` (in column order);
    ``target`` is a float64 vector for ``"regression"`` and ``"binary"`` tasks (binary
    targets hold only 0.0 and 1.0) and an int64 vector of class labels ``0 .. K-1`` for
    ``"multiclass"``. The arrays are copied on construction and made read-only, so the
    columns and the matrix :attr:`X` can never disagree. ``num_classes`` is 2 for binary
    tasks, ``K`` for multi-class ones (inferred from the labels when not given, and kept by
    :meth:`split` and :meth:`subset`), and ``None`` for regression.

    Example:

    >>> data = Dataset({"dosage": [0.0, 0.5, 1.0]}, [0.0, 1.0, 0.0], "observed", "dosage",
    ...                "regression")
    >>> data.n, data.input_names, data.X.shape
    (3, ('dosage',), (3, 1))
    """

    inputs: dict[str, np.ndarray]
    target: np.ndarray
    target_name: str
    name: str
    task: str
    num_classes: int | None = None
    # The (n, d) matrix of the inputs, built once in __post_init__; the columns in
    # ``inputs`` are read-only views of it.
    _matrix: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ChainruleError(f"a data set needs a non-empty name, not {self.name!r}")
        label = f"data set '{self.name}'"
        if self.task not in TASKS:
            raise ChainruleError(
                f"{label}: task must be one of {', '.join(TASKS)}, not {self.task!r}"
            )
        if not isinstance(self.target_name, str) or not self.target_name:
            raise ChainruleError(f"{label}: the target needs a non-empty name")
        object.__setattr__(self, "target_name", normal_name(self.target_name))
        if not isinstance(self.inputs, Mapping) or not self.inputs:
            raise ChainruleError(f"{label}: needs at least one input column")

        target = _as_vector(self.target, f"{label}: target '{self.target_name}'")
        n = target.shape[0]
        if n == 0:
            raise ChainruleError(f"{label}: has no rows")
        names: list[str] = []
        columns: list[np.ndarray] = []
        for name, values in self.inputs.items():
            if not isinstance(name, str) or not name:
                raise ChainruleError(f"{label}: input names must be non-empty strings")
            name = normal_name(name)
            if name in names:
                raise ChainruleError(
                    f"{label}: two inputs are named '{name}' (as Python reads names)"
                )
            if name == self.target_name:
                raise ChainruleError(f"{label}: '{name}' is both an input and the target")
            column = _as_vector(values, f"{label}: input '{name}'")
            if column.shape[0] != n:
                raise ChainruleError(
                    f"{label}: input '{name}' has {column.shape[0]} values but "
                    f"target '{self.target_name}' has {n}"
                )
            names.append(name)
            columns.append(column)

        matrix = np.column_stack(columns)  # (n, d), a fresh float64 copy
        bad = ~np.isfinite(matrix)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ChainruleError(
                f"{label}: input '{names[col]}' has a non-finite value "
                f"({matrix[row, col]}) at row {row}"
            )
        bad_target = np.flatnonzero(~np.isfinite(target))
        if bad_target.size:
            row = bad_target[0]
            raise ChainruleError(
                f"{label}: target '{self.target_name}' has a non-finite value "
                f"({target[row]}) at row {row}"
            )
        target, num_classes = _check_target(
            target, self.task, self.num_classes, f"{label}: target '{self.target_name}'"
        )

        matrix.setflags(write=False)
        target.setflags(write=False)
        object.__setattr__(self, "_matrix", matrix)
        object.__setattr__(self, "inputs", {name: matrix[:, j] for j, name in enumerate(names)})
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "num_classes", num_classes)

    def __repr__(self) -> str:
        names = self.input_names
        shown = ", ".join(names) if len(names) <= 6 else f"{names[0]}, {names[1]}, ..., {names[-1]}"
        return (
            f"Dataset(name={self.name!r}, task={self.task!r}, n={self.n}, "
            f"inputs=[{shown}] ({len(names)}), target={self.target_name!r})"
        )

    @classmethod
    def from_matrix(
        cls,
        X: ArrayLike,
        y: ArrayLike,
        input_names: Sequence[str],
        target_name: str,
        name: str,
        task: str,
        num_classes: int | None = None,
    ) -> Dataset:
        """Build a data set from an ``(n, d)`` matrix whose columns are named ``input_names``.

        Example:

        >>> data = Dataset.from_matrix([[0, 1], [2, 3], [4, 5]], [0, 1, 1],
        ...                            ["a", "b"], "label", "tiny", "binary")
        >>> data.input_names, data.inputs["b"].tolist()
        (('a', 'b'), [1.0, 3.0, 5.0])
        """
        label = f"data set '{name}'"
        try:
            matrix = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ChainruleError(f"{label}: the input matrix is not numeric ({exc})") from None
        if matrix.ndim != 2:
            raise ChainruleError(
                f"{label}: the input matrix must be 2-D (rows x inputs), got shape {matrix.shape}"
            )
        if isinstance(input_names, str):
            raise ChainruleError(f"{label}: input_names must be a list of names, not a string")
        names = list(input_names)
        if len(names) != matrix.shape[1]:
            raise ChainruleError(
                f"{label}: the input matrix has {matrix.shape[1]} columns but "
                f"{len(names)} input names were given"
            )
        seen: set[str] = set()
        for input_name in names:
            if input_name in seen:
                raise ChainruleError(f"{label}: input name '{input_name}' appears twice")
            seen.add(input_name)
        inputs = {input_name: matrix[:, j] for j, input_name in enumerate(names)}
        return cls(inputs, np.asarray(y), target_name, name, task, num_classes)

    @property
    def n(self) -> int:
        """The number of rows.

        >>> dosage().n
        3
        """
        return int(self.target.shape[0])

    @property
    def input_names(self) -> tuple[str, ...]:
        """The input column names, in column order.

        >>> moons().input_names
        ('x1', 'x2')
        """
        return tuple(self.inputs)

    @property
    def X(self) -> np.ndarray:
        """The read-only ``(n, d)`` float64 matrix of the inputs, in :attr:`input_names` order.

        >>> dosage().X.ravel().tolist()
        [0.0, 0.5, 1.0]
        """
        return self._matrix

    def subset(self, indices: ArrayLike) -> Dataset:
        """The rows at ``indices`` (row numbers ``0 .. n-1``, or a boolean mask of length n).

        Example:

        >>> dosage().subset([2, 0]).inputs["dosage"].tolist()
        [1.0, 0.0]
        """
        index = np.asarray(indices)
        if index.dtype == np.bool_:
            if index.shape != (self.n,):
                raise ChainruleError(
                    f"data set '{self.name}': a boolean row mask must have shape ({self.n},), "
                    f"got {index.shape}"
                )
            index = np.flatnonzero(index)
        elif index.size == 0:
            index = np.zeros(0, dtype=np.int64)
        elif index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
            raise ChainruleError(
                f"data set '{self.name}': row indices must be a 1-D list of integers, "
                f"got dtype {index.dtype} and shape {index.shape}"
            )
        if index.size == 0:
            raise ChainruleError(f"data set '{self.name}': the subset selects no rows")
        out_of_range = index[(index < 0) | (index >= self.n)]
        if out_of_range.size:
            raise ChainruleError(
                f"data set '{self.name}': row index {out_of_range[0]} is out of range "
                f"(the data set has {self.n} rows, numbered 0 to {self.n - 1})"
            )
        return Dataset.from_matrix(
            self.X[index],
            self.target[index],
            self.input_names,
            self.target_name,
            self.name,
            self.task,
            self.num_classes,
        )

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Shuffle the rows (seeded) and split them into ``(train, test)``.

        The test set gets ``round(test_fraction * n)`` rows, at least one, and the training
        set at least one. The split is not stratified.

        Example:

        >>> train, test = moons(n=100).split(test_fraction=0.25, seed=3)
        >>> train.n, test.n
        (75, 25)
        """
        if not (isinstance(test_fraction, int | float) and 0.0 < test_fraction < 1.0):
            raise ChainruleError(
                f"data set '{self.name}': test_fraction must be between 0 and 1 "
                f"(exclusive), got {test_fraction!r}"
            )
        if self.n < 2:
            raise ChainruleError(
                f"data set '{self.name}': cannot split {self.n} row into train and test"
            )
        n_test = min(max(round(test_fraction * self.n), 1), self.n - 1)
        order = np.random.default_rng(seed).permutation(self.n)
        return self.subset(order[n_test:]), self.subset(order[:n_test])

    def standardized(self, stats: Standardization | None = None) -> tuple[Dataset, Standardization]:
        """Rescale every input to mean 0 and standard deviation 1; the target is unchanged.

        Without ``stats`` the statistics are measured on this data set; pass the training
        set's statistics to transform a test set the same way.

        Example:

        >>> train, test = moons(n=100).split()
        >>> train_std, stats = train.standardized()
        >>> test_std, _ = test.standardized(stats)
        >>> bool(abs(train_std.X.mean(axis=0)).max() < 1e-12)
        True
        """
        if stats is None:
            stats = Standardization.fit(self)
        return stats.apply(self), stats


def _as_vector(values: ArrayLike, what: str) -> np.ndarray:
    """``values`` as a fresh 1-D float64 array, or a ChainruleError naming ``what``."""
    try:
        vector = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ChainruleError(f"{what} is not numeric ({exc})") from None
    if vector.ndim != 1:
        raise ChainruleError(f"{what} must be a 1-D list of values, got shape {vector.shape}")
    return vector


def _check_target(
    target: np.ndarray, task: str, num_classes: int | None, what: str
) -> tuple[np.ndarray, int | None]:
    """Check ``target`` against ``task``; return it in the task's dtype and the class count."""
    if task == "regression":
        if num_classes is not None:
            raise ChainruleError(f"{what}: a regression task has no num_classes")
        return target, None
    if task == "binary":
        bad = np.flatnonzero((target != 0.0) & (target != 1.0))
        if bad.size:
            raise ChainruleError(
                f"{what}: a binary task needs targets 0 or 1, found {target[bad[0]]:g} "
                f"at row {bad[0]}"
            )
        if num_classes not in (None, 2):
            raise ChainruleError(f"{what}: a binary task has 2 classes, not {num_classes}")
        return target, 2
    # multiclass
    bad = np.flatnonzero((target < 0) | (target != np.round(target)))
    if bad.size:
        raise ChainruleError(
            f"{what}: class labels must be whole numbers 0, 1, 2, ..., found "
            f"{target[bad[0]]:g} at row {bad[0]}"
        )
    labels = target.astype(np.int64)
    needed = int(labels.max()) + 1
    if num_classes is None:
        return labels, needed
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise ChainruleError(f"{what}: num_classes must be an integer, not {num_classes!r}")
    if num_classes < needed:
        raise ChainruleError(
            f"{what}: label {needed - 1} needs at least {needed} classes, "
            f"but num_classes is {num_classes}"
        )
    return labels, int(num_classes)


# ---------------------------------------------------------------------------------------
# Standardization
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Standardization:
    """Per-input mean and standard deviation, to rescale inputs to mean 0 and std 1.

    A constant input (standard deviation 0) keeps std 1, so it is only shifted to 0.

    Example:

    >>> stats = Standardization.fit(dosage())
    >>> stats.as_dict()
    {'dosage': {'mean': 0.5, 'std': 0.408248290463863}}
    >>> stats.transform([[0.5]]).tolist()
    [[0.0]]
    """

    input_names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        names = tuple(self.input_names)
        mean = np.array(self.mean, dtype=np.float64)
        std = np.array(self.std, dtype=np.float64)
        if mean.shape != (len(names),) or std.shape != (len(names),):
            raise ChainruleError(
                f"standardization: {len(names)} inputs need {len(names)} means and stds, "
                f"got shapes {mean.shape} and {std.shape}"
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ChainruleError("standardization: means must be finite and stds positive")
        mean.setflags(write=False)
        std.setflags(write=False)
        object.__setattr__(self, "input_names", names)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @classmethod
    def fit(cls, dataset: Dataset) -> Standardization:
        """Measure the mean and (population) standard deviation of each input of ``dataset``.

        Example:

        >>> Standardization.fit(dosage()).mean.tolist()
        [0.5]
        """
        X = dataset.X  # (n, d)
        mean = X.mean(axis=0)
        deviation = X - mean
        # Divide the deviations by their largest magnitude before squaring, so that the
        # squares neither underflow (values like 1e-200) nor overflow (like 1e200).
        scale = np.abs(deviation).max(axis=0)  # (d,)
        safe = np.where(scale > 0, scale, 1.0)
        std = safe * np.sqrt(np.mean((deviation / safe) ** 2, axis=0))
        constant = (X.max(axis=0) == X.min(axis=0)) | ~(std > 0)  # exact, not a tolerance
        return cls(dataset.input_names, mean, np.where(constant, 1.0, std))

    def transform(self, X: ArrayLike) -> np.ndarray:
        """``(X - mean) / std`` for an ``(n, d)`` matrix in :attr:`input_names` order.

        Example:

        >>> Standardization(("a",), [1.0], [2.0]).transform([[3.0], [1.0]]).tolist()
        [[1.0], [0.0]]
        """
        matrix = np.asarray(X, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.input_names):
            raise ChainruleError(
                f"standardization: expected a matrix with {len(self.input_names)} columns "
                f"({', '.join(self.input_names)}), got shape {matrix.shape}"
            )
        return (matrix - self.mean) / self.std

    def inverse_transform(self, X: ArrayLike) -> np.ndarray:
        """Undo :meth:`transform`: ``X * std + mean``.

        Example:

        >>> Standardization(("a",), [1.0], [2.0]).inverse_transform([[1.0]]).tolist()
        [[3.0]]
        """
        matrix = np.asarray(X, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.input_names):
            raise ChainruleError(
                f"standardization: expected a matrix with {len(self.input_names)} columns "
                f"({', '.join(self.input_names)}), got shape {matrix.shape}"
            )
        return matrix * self.std + self.mean

    def apply(self, dataset: Dataset) -> Dataset:
        """``dataset`` with its inputs standardized; the inputs must have the same names.

        Example:

        >>> data = dosage()
        >>> Standardization.fit(data).apply(data).inputs["dosage"].round(4).tolist()
        [-1.2247, 0.0, 1.2247]
        """
        if dataset.input_names != self.input_names:
            raise ChainruleError(
                f"data set '{dataset.name}': its inputs ({', '.join(dataset.input_names)}) "
                f"differ from the standardization's ({', '.join(self.input_names)})"
            )
        return Dataset.from_matrix(
            self.transform(dataset.X),
            dataset.target,
            dataset.input_names,
            dataset.target_name,
            dataset.name,
            dataset.task,
            dataset.num_classes,
        )

    def as_dict(self) -> dict[str, dict[str, float]]:
        """``{input name: {"mean": ..., "std": ...}}``, e.g. for a JSON report.

        Example:

        >>> Standardization(("a",), [1.0], [2.0]).as_dict()
        {'a': {'mean': 1.0, 'std': 2.0}}
        """
        return {
            name: {"mean": float(m), "std": float(s)}
            for name, m, s in zip(self.input_names, self.mean, self.std, strict=True)
        }


# ---------------------------------------------------------------------------------------
# Built-in data sets
# ---------------------------------------------------------------------------------------


def dosage() -> Dataset:
    """The seed example: three drug dosages and whether the drug worked (StatQuest).

    Example:

    >>> data = dosage()
    >>> data.inputs["dosage"].tolist(), data.target.tolist(), data.task
    ([0.0, 0.5, 1.0], [0.0, 1.0, 0.0], 'regression')
    """
    return Dataset({"dosage": [0.0, 0.5, 1.0]}, [0.0, 1.0, 0.0], "observed", "dosage", "regression")


#: The largest noise a generated data set takes: its points lie within a few units of the
#: origin, so noise far above 1 only buries them, and noise near the largest float64 makes
#: coordinates that overflow to infinity.
MAX_NOISE = 1000.0


def _check_generator_options(dataset: str, n: int, noise: float) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise ChainruleError(f"data set '{dataset}': n must be an integer >= 2, got {n!r}")
    if (
        isinstance(noise, bool)
        or not isinstance(noise, int | float | np.floating)
        or not math.isfinite(noise)
        or noise < 0
    ):
        raise ChainruleError(
            f"data set '{dataset}': noise must be a finite number >= 0, got {noise!r}"
        )
    if noise > MAX_NOISE:
        raise ChainruleError(
            f"data set '{dataset}': noise must be at most {MAX_NOISE:g} (the points lie "
            f"within a few units of the origin), got {noise!r}"
        )


def _two_classes(
    dataset: str, class0: np.ndarray, class1: np.ndarray, noise: float, rng: np.random.Generator
) -> Dataset:
    """Label the noise-free points 0 and 1, add Gaussian noise, shuffle, build the data set."""
    points = np.concatenate([class0, class1])  # (n, 2)
    labels = np.concatenate([np.zeros(len(class0)), np.ones(len(class1))])  # (n,)
    # Always draw the noise, even when it is 0, so that the same seed gives the same
    # shuffle whatever the noise level.
    points = points + rng.normal(0.0, noise, size=points.shape)
    order = rng.permutation(len(points))
    return Dataset.from_matrix(
        points[order], labels[order], ("x1", "x2"), "label", dataset, "binary"
    )


def moons(n: int = 200, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Two interleaving half circles: label 0 on the upper moon, 1 on the lower one.

    The upper moon is the unit half circle ``(cos t, sin t)``, the lower one
    ``(1 - cos t, 0.5 - sin t)`` for ``t`` in ``[0, pi]``; ``noise`` is the standard
    deviation of Gaussian noise added to each coordinate. Classes have ``n // 2`` and
    ``n - n // 2`` points.

    Example:

    >>> data = moons(n=10, seed=0)
    >>> data.X.shape, sorted(set(data.target.tolist()))
    ((10, 2), [0.0, 1.0])
    """
    _check_generator_options("moons", n, noise)
    rng = np.random.default_rng(seed)
    t0 = np.linspace(0.0, np.pi, n // 2)
    t1 = np.linspace(0.0, np.pi, n - n // 2)
    upper = np.column_stack([np.cos(t0), np.sin(t0)])
    lower = np.column_stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)])
    return _two_classes("moons", upper, lower, noise, rng)


def circles(n: int = 200, noise: float = 0.05, factor: float = 0.5, seed: int = 0) -> Dataset:
    """A small circle inside a large one: label 0 on the unit circle, 1 on the inner one.

    The inner circle has radius ``factor`` (between 0 and 1); ``noise`` is the standard
    deviation of Gaussian noise added to each coordinate.

    Example:

    >>> data = circles(n=8, noise=0.0)
    >>> sorted(set(np.hypot(data.X[:, 0], data.X[:, 1]).round(6).tolist()))
    [0.5, 1.0]
    """
    _check_generator_options("circles", n, noise)
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0 < factor < 1:
        raise ChainruleError(
            f"data set 'circles': factor must be between 0 and 1 (exclusive), got {factor!r}"
        )
    rng = np.random.default_rng(seed)
    t0 = np.linspace(0.0, 2 * np.pi, n // 2, endpoint=False)
    t1 = np.linspace(0.0, 2 * np.pi, n - n // 2, endpoint=False)
    outer = np.column_stack([np.cos(t0), np.sin(t0)])
    inner = factor * np.column_stack([np.cos(t1), np.sin(t1)])
    return _two_classes("circles", outer, inner, noise, rng)


#: Turns of each spiral arm, and the radius where an arm ends.
_SPIRAL_TURNS = 1.75
_SPIRAL_RADIUS = 2.0


def _spiral_arm(m: int, phase: float) -> np.ndarray:
    """``m`` points along an arm of radius ``(0, 2]`` turning 1.75 times, rotated by ``phase``."""
    s = np.arange(1, m + 1) / m  # (m,) in (0, 1]: the origin is left out, shared by both arms
    angle = 2 * np.pi * _SPIRAL_TURNS * s + phase
    radius = _SPIRAL_RADIUS * s
    return np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])


def spirals(n: int = 200, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Two interleaved spirals: arm 1 is arm 0 turned half a circle.

    Each arm winds 1.75 times outwards from the origin to radius 2, so neighbouring arms
    are about 0.57 apart; ``noise`` is the standard deviation of Gaussian noise added to
    each coordinate.

    Example:

    >>> data = spirals(n=50, seed=2)
    >>> data.X.shape, int(data.target.sum())
    ((50, 2), 25)
    """
    _check_generator_options("spirals", n, noise)
    rng = np.random.default_rng(seed)
    arm0 = _spiral_arm(n // 2, 0.0)
    arm1 = _spiral_arm(n - n // 2, np.pi)
    return _two_classes("spirals", arm0, arm1, noise, rng)


def xor(n: int = 200, noise: float = 0.1, seed: int = 0) -> Dataset:
    """The exclusive-or pattern: label 1 where ``x1`` and ``x2`` have opposite signs.

    Points are uniform in the four quadrants of ``[-1, 1]^2`` (kept 0.05 away from the
    axes), half of them in each class; the label comes from the noise-free point, then
    Gaussian noise of standard deviation ``noise`` is added to each coordinate.

    Example:

    >>> data = xor(n=20, noise=0.0)
    >>> bool(((data.X[:, 0] * data.X[:, 1] < 0) == (data.target == 1)).all())
    True
    """
    _check_generator_options("xor", n, noise)
    rng = np.random.default_rng(seed)
    magnitude = rng.uniform(0.05, 1.0, size=(n, 2))  # (n, 2)
    sign1 = np.where(rng.random(n) < 0.5, -1.0, 1.0)  # (n,)
    opposite = np.arange(n) >= n // 2  # the first n // 2 points are class 0
    sign2 = np.where(opposite, -sign1, sign1)
    points = magnitude * np.column_stack([sign1, sign2])
    return _two_classes("xor", points[~opposite], points[opposite], noise, rng)


def digits(seed: int = 0) -> Dataset:
    """The 1797 8x8 handwritten digits from scikit-learn, rows shuffled with ``seed``.

    Inputs ``p0`` .. ``p63`` are the pixels row by row (``p{8 * row + column}``), scaled
    from 0..16 to [0, 1]; the target ``digit`` holds int64 labels 0..9 (``num_classes``
    10). Needs scikit-learn: ``pip install 'chainrule[data]'``.

    Example:

    >>> data = digits()
    >>> data.X.shape, data.num_classes
    ((1797, 64), 10)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ChainruleError(
            "the digits data set needs scikit-learn: pip install 'chainrule[data]'"
        ) from None
    bunch = load_digits()
    pixels = np.asarray(bunch.data, dtype=np.float64) / 16.0  # (1797, 64)
    labels = np.asarray(bunch.target, dtype=np.int64)  # (1797,)
    order = np.random.default_rng(seed).permutation(len(labels))
    names = [f"p{i}" for i in range(pixels.shape[1])]
    return Dataset.from_matrix(
        pixels[order], labels[order], names, "digit", "digits", "multiclass", num_classes=10
    )


#: The iris measurements as input names, in scikit-learn's column order.
IRIS_INPUTS = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def iris(seed: int | None = None) -> Dataset:
    """Fisher's 150 iris flowers from scikit-learn: four measurements in cm, three species.

    Inputs ``sepal_length``, ``sepal_width``, ``petal_length``, ``petal_width``; the target
    ``species`` holds int64 labels 0 (setosa), 1 (versicolor), 2 (virginica), 50 rows
    each. The rows keep scikit-learn's order unless ``seed`` shuffles them. A scenario picks
    the inputs it uses with ``[model] inputs``. Needs scikit-learn:
    ``pip install 'chainrule[data]'``.

    Example:

    >>> data = iris()
    >>> data.X.shape, data.num_classes, data.input_names[3]
    ((150, 4), 3, 'petal_width')
    """
    try:
        from sklearn.datasets import load_iris
    except ImportError:
        raise ChainruleError(
            "the iris data set needs scikit-learn: pip install 'chainrule[data]'"
        ) from None
    bunch = load_iris()
    measurements = np.asarray(bunch.data, dtype=np.float64)  # (150, 4)
    labels = np.asarray(bunch.target, dtype=np.int64)  # (150,)
    if seed is not None:
        order = np.random.default_rng(seed).permutation(len(labels))
        measurements, labels = measurements[order], labels[order]
    return Dataset.from_matrix(
        measurements, labels, list(IRIS_INPUTS), "species", "iris", "multiclass", num_classes=3
    )


#: The species of :func:`iris`, by label.
IRIS_SPECIES = ("setosa", "versicolor", "virginica")


#: The built-in data sets by name; each takes keyword options (see its docstring).
DATASETS: dict[str, Callable[..., Dataset]] = {
    "dosage": dosage,
    "moons": moons,
    "circles": circles,
    "spirals": spirals,
    "xor": xor,
    "iris": iris,
    "digits": digits,
}


def load_dataset(name: str, **options: object) -> Dataset:
    """A built-in data set by name, with its options (``n``, ``noise``, ``seed``, ...).

    Example:

    >>> load_dataset("circles", n=40, factor=0.3).n
    40
    >>> load_dataset("dosage").target_name
    'observed'
    """
    try:
        make = DATASETS[name]
    except (KeyError, TypeError):
        raise ChainruleError(
            f"unknown data set {name!r}; the built-in data sets are: {', '.join(DATASETS)}"
        ) from None
    signature = inspect.signature(make)
    unknown = [option for option in options if option not in signature.parameters]
    if unknown:
        accepted = ", ".join(signature.parameters) or "none"
        raise ChainruleError(
            f"data set '{name}' has no option {', '.join(map(repr, unknown))}; "
            f"its options are: {accepted}"
        )
    for option, value in options.items():
        default = signature.parameters[option].default
        _check_option(name, option, value, default)
        if isinstance(default, float):
            options[option] = float(value) + 0.0  # type: ignore[arg-type]  # (-0.0 is 0.0)
    return make(**options)


def _check_option(name: str, option: str, value: object, default: object) -> None:
    """An option of a built-in data set has the type of its default: a whole number >= 0
    (``seed``; ``n`` >= 1) or a finite number >= 0 (``noise``, ``factor``)."""
    if isinstance(default, bool):
        return
    if isinstance(default, int):
        least = 1 if option == "n" else 0
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ChainruleError(
                f"data set '{name}': {option} must be a whole number >= {least}, got {value!r}"
            )
    elif isinstance(default, float):
        ok = not isinstance(value, bool) and isinstance(value, int | float | np.number)
        if not ok or not math.isfinite(float(value)) or float(value) < 0:  # type: ignore[arg-type]
            raise ChainruleError(
                f"data set '{name}': {option} must be a finite number >= 0, got {value!r}"
            )


# ---------------------------------------------------------------------------------------
# CSV files
# ---------------------------------------------------------------------------------------


#: A number as a CSV file means it: plain decimal notation with ASCII digits (``12``,
#: ``-0.5``, ``.5``, ``1e-3``), or ``nan``/``inf``/``infinity`` (read, then refused as not
#: finite). ``float`` also reads ``1_000``, Arabic-Indic or full-width digits and
#: non-breaking spaces, which a CSV file does not mean as numbers.
_CSV_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|inf|infinity)",
    re.IGNORECASE | re.ASCII,
)

#: The whitespace a cell may have around its number (spaces and tabs, as written by hand).
_CELL_SPACE = " \t\r\n\f\v"

#: The largest CSV file read: 100,000 data points of a few dozen columns fit well inside.
MAX_CSV_BYTES = 64 * 1024 * 1024


def csv_number(text: str) -> float | None:
    """The number a CSV cell holds, or None when it is not plain decimal notation.

    >>> csv_number(" -2.5 "), csv_number("1e3"), csv_number(".5"), csv_number("nan")
    (-2.5, 1000.0, 0.5, nan)
    >>> csv_number("1_000"), csv_number("\u0661\u0662"), csv_number("\uff11"), csv_number("0x1")
    (None, None, None, None)
    """
    stripped = text.strip(_CELL_SPACE)
    if _CSV_NUMBER.fullmatch(stripped) is None:
        return None
    return float(stripped)


def _is_number(text: str) -> bool:
    return csv_number(text) is not None


def _number_hint(text: str) -> str:
    """Why a cell that looks like a number is not one, for the error message."""
    if "_" in text and csv_number(text.replace("_", "")) is not None:
        return " (write numbers without '_' separators, e.g. 1000)"
    if any(c.isdigit() and not c.isascii() for c in text) or any(
        c.isspace() and not c.isascii() for c in text
    ):
        return " (write numbers with the ASCII digits 0-9, e.g. 12.5)"
    if "," in text or text.strip(_CELL_SPACE).count(".") > 1:
        return " (write numbers in plain decimal notation, e.g. 1234.5)"
    return ""


def _cell_error(where: str, line: int, column: str, text: str) -> ChainruleError:
    """The error for a cell that is not a number in plain decimal notation."""
    stripped = text.strip(_CELL_SPACE)
    if not stripped:
        return ChainruleError(
            f"{where}: line {line}, column '{column}': empty cell, expected a number"
        )
    return ChainruleError(
        f"{where}: line {line}, column '{column}': {stripped!r} is not a number"
        f"{_separator_hint(stripped) or _number_hint(stripped)}"
    )


def _separator_hint(text: str) -> str:
    """A hint for files separated by semicolons or tabs, which csv reads as one column."""
    if ";" in text or "\t" in text:
        return " (is the file separated by ';' or tabs? chainrule reads comma-separated files)"
    return ""


def read_bounded(path: str | os.PathLike[str], where: str, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (``what`` names such a file).

    A device (``/dev/zero``), a FIFO or a socket is refused before anything is read, and
    no more than ``limit + 1`` bytes are ever read, so a file that grows cannot exhaust
    memory. A file that cannot be opened raises the OSError (FileNotFoundError,
    IsADirectoryError...) for the caller to word; the rest is one ChainruleError.

    >>> read_bounded("/dev/zero", "/dev/zero", 100, "a CSV file")
    Traceback (most recent call last):
    ...
    chainrule.errors.ChainruleError: /dev/zero: is not a regular file (a device, FIFO or socket)
    """
    # O_NONBLOCK: opening a FIFO with no writer must not hang; a regular file ignores it.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags)
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(info.st_mode):
            raise ChainruleError(f"{where}: is not a regular file (a device, FIFO or socket)")
        if info.st_size > limit:
            raise ChainruleError(f"{where}: {info.st_size:,} bytes; {what} has at most {limit:,}")
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise ChainruleError(f"{where}: grew past {limit:,} bytes while being read")
    return raw


def read_text_file(path: str | os.PathLike[str], where: str, limit: int, what: str) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes (:func:`read_bounded`),
    or one ChainruleError.

    >>> read_text_file("/dev/zero", "/dev/zero", 100, "a CSV file")
    Traceback (most recent call last):
    ...
    chainrule.errors.ChainruleError: /dev/zero: is not a regular file (a device, FIFO or socket)
    """
    try:
        raw = read_bounded(path, where, limit, what)
    except FileNotFoundError:
        raise ChainruleError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise ChainruleError(f"{where}: is a directory, not {what}") from None
    except OSError as exc:
        raise ChainruleError(f"{where}: cannot open the file ({exc.strerror})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ChainruleError(f"{where}: is not UTF-8 text") from None


def load_csv(
    path: str | os.PathLike[str],
    inputs: list[str] | None = None,
    target: str | None = None,
    name: str | None = None,
) -> Dataset:
    """Read a comma-separated file with a header row of column names.

    ``inputs`` lists the input columns (default: every column but the target); ``target``
    names the target column (default: the last one); ``name`` defaults to the file name
    without its extension. Only the chosen columns must be numeric. The task is
    ``"binary"`` when every target value is 0 or 1, otherwise ``"regression"``. A bad
    file raises one :class:`ChainruleError` naming the file, and the line and column
    where there is one.

    Example:

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "doses.csv"
    >>> _ = path.write_text("dosage,observed\\n0,0\\n0.5,1\\n1,0\\n")
    >>> data = load_csv(path)
    >>> data.name, data.input_names, data.target_name, data.task
    ('doses', ('dosage',), 'observed', 'binary')
    """
    where = os.fspath(path)
    text = read_text_file(path, where, MAX_CSV_BYTES, "a CSV file")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        # (line number in the file, cells); blank lines are skipped.
        records = [
            (reader.line_num, row)
            for row in reader
            if row and not (len(row) == 1 and not row[0].strip())
        ]
    except csv.Error as exc:
        raise ChainruleError(f"{where}: line {reader.line_num}: {exc}") from None

    if not records:
        raise ChainruleError(f"{where}: the file is empty (expected a header row of column names)")
    header_line, header = records[0]
    columns = [normal_name(cell.strip()) for cell in header]
    for j, column in enumerate(columns):
        if not column:
            raise ChainruleError(
                f"{where}: line {header_line}: column {j + 1} of the header has no name"
            )
        if column in columns[:j]:
            raise ChainruleError(
                f"{where}: line {header_line}: column name '{column}' appears twice in the header"
            )
    if all(_is_number(column) for column in columns):
        raise ChainruleError(
            f"{where}: line {header_line} should be a header row of column names, "
            f"but it holds only numbers ({', '.join(columns)})"
        )
    data = records[1:]
    if not data:
        raise ChainruleError(f"{where}: has a header row but no data rows")
    known = ", ".join(columns)

    target_name = columns[-1] if target is None else normal_name(target)
    if target_name not in columns:
        raise ChainruleError(f"{where}: no column named '{target_name}'; the columns are: {known}")
    if inputs is None:
        input_names = [column for column in columns if column != target_name]
        if not input_names:
            raise ChainruleError(
                f"{where}: has only the target column '{target_name}'; "
                f"at least one input column is needed{_separator_hint(target_name)}"
            )
    else:
        input_names = [normal_name(n) for n in ([inputs] if isinstance(inputs, str) else inputs)]
        if not input_names:
            raise ChainruleError(f"{where}: the list of input columns is empty")
        missing = [column for column in input_names if column not in columns]
        if missing:
            listed = ", ".join(f"'{column}'" for column in missing)
            raise ChainruleError(f"{where}: no column named {listed}; the columns are: {known}")
        if target_name in input_names:
            raise ChainruleError(f"{where}: column '{target_name}' is both an input and the target")
        for j, column in enumerate(input_names):
            if column in input_names[:j]:
                raise ChainruleError(f"{where}: input column '{column}' is listed twice")

    width = len(columns)
    for line, row in data:
        if len(row) != width:
            raise ChainruleError(
                f"{where}: line {line} has {len(row)} fields but the header has {width} ({known})"
            )

    wanted = [columns.index(column) for column in [*input_names, target_name]]
    values = np.empty((len(data), len(wanted)))  # (rows, inputs + target)
    for r, (line, row) in enumerate(data):
        cells = [csv_number(row[j]) for j in wanted]
        if None in cells:
            j = min(wanted[k] for k, cell in enumerate(cells) if cell is None)  # leftmost
            raise _cell_error(where, line, columns[j], row[j])
        values[r] = cells

    bad = ~np.isfinite(values)
    if bad.any():
        r = int(np.flatnonzero(bad.any(axis=1))[0])
        line, row = data[r]
        j = min(wanted[k] for k in np.flatnonzero(bad[r]))
        raise ChainruleError(
            f"{where}: line {line}, column '{columns[j]}': {row[j].strip()!r} is not a "
            "finite number"
        )

    y = values[:, -1]
    task = "binary" if np.isin(y, (0.0, 1.0)).all() else "regression"
    return Dataset.from_matrix(
        values[:, :-1],
        y,
        input_names,
        target_name,
        name if name is not None else Path(path).stem,
        task,
    )
