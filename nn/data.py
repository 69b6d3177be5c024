"""Data: toy generators, CSV loading, the bundled real data sets, splits and scaling.

Every generator returns `(X, y)`: `X` a float64 array of shape (n_samples, n_features), `y`
an int64 array of class indices 0..k-1. They are seeded (an int or a numpy Generator), so
the same seed gives the same data. `make_moons` and `make_circles` follow scikit-learn's
definitions (without noise they give the same points as sklearn, in the same order when
`shuffle=False`).

`load_csv` reads a table with a header row; `load_dataset("iris")` reads one of the CSVs
shipped in `nn/datasets/` (see the README there for sources and licences).
"""

from __future__ import annotations

import csv
import io
import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from autograd.files import read_regular

Seed = int | np.random.Generator | None


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_n(n_samples: int, where: str, minimum: int = 2) -> None:
    if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < minimum:
        raise ValueError(f"{where}: n_samples must be an int >= {minimum}, got {n_samples!r}")


def _finish(
    X: np.ndarray, y: np.ndarray, rng: np.random.Generator, shuffle: bool, noise: float | None
) -> tuple[np.ndarray, np.ndarray]:
    # The same order as scikit-learn: shuffle first, then add the noise.
    if shuffle:
        order = rng.permutation(len(y))
        X, y = X[order], y[order]
    if noise:
        X = X + rng.normal(scale=noise, size=X.shape)
    return X.astype(np.float64), y.astype(np.int64)


# -----------------------------------------------------------------------------------------
# Toy generators
# -----------------------------------------------------------------------------------------


def make_moons(
    n_samples: int = 100, noise: float | None = None, seed: Seed = None, shuffle: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (sklearn.datasets.make_moons).

    The outer moon (class 0, n_samples // 2 points) is (cos t, sin t) for t in [0, pi]; the
    inner moon (class 1) is (1 - cos t, 1 - sin t - 0.5). Gaussian noise of standard
    deviation `noise` is added after shuffling.
    """
    _check_n(n_samples, "make_moons")
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = np.linspace(0, np.pi, n_out)
    t_in = np.linspace(0, np.pi, n_in)
    X = np.vstack(
        [
            np.append(np.cos(t_out), 1 - np.cos(t_in)),
            np.append(np.sin(t_out), 1 - np.sin(t_in) - 0.5),
        ]
    ).T
    y = np.hstack([np.zeros(n_out, dtype=np.int64), np.ones(n_in, dtype=np.int64)])
    return _finish(X, y, _rng(seed), shuffle, noise)


def make_circles(
    n_samples: int = 100,
    noise: float | None = None,
    factor: float = 0.8,
    seed: Seed = None,
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """A large circle (class 0) around a smaller one of radius `factor` (class 1)
    (sklearn.datasets.make_circles)."""
    _check_n(n_samples, "make_circles")
    if not 0.0 <= factor < 1.0:
        raise ValueError(f"make_circles: factor must be in [0, 1), got {factor!r}")
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    X = np.vstack(
        [
            np.append(np.cos(t_out), factor * np.cos(t_in)),
            np.append(np.sin(t_out), factor * np.sin(t_in)),
        ]
    ).T
    y = np.hstack([np.zeros(n_out, dtype=np.int64), np.ones(n_in, dtype=np.int64)])
    return _finish(X, y, _rng(seed), shuffle, noise)


def make_spirals(
    n_samples: int = 100,
    noise: float | None = None,
    n_classes: int = 2,
    turns: float = 1.0,
    seed: Seed = None,
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """`n_classes` interleaved spiral arms in the unit disc (the CS231n spiral data).

    Arm k has points r (cos a, sin a) with r from 0 to 1 and angle
    a = 2 pi (turns * r + k / n_classes).
    """
    _check_n(n_samples, "make_spirals")
    if not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"make_spirals: n_classes must be an int >= 2, got {n_classes!r}")
    sizes = [n_samples // n_classes + (k < n_samples % n_classes) for k in range(n_classes)]
    parts, labels = [], []
    for k, size in enumerate(sizes):
        r = np.linspace(0.0, 1.0, size)
        a = 2 * np.pi * (turns * r + k / n_classes)
        parts.append(np.column_stack([r * np.cos(a), r * np.sin(a)]))
        labels.append(np.full(size, k, dtype=np.int64))
    return _finish(np.vstack(parts), np.concatenate(labels), _rng(seed), shuffle, noise)


def make_xor(
    n_samples: int = 100, noise: float | None = None, seed: Seed = None
) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform in [-1, 1]^2, class 1 where x0 * x1 > 0 (same-sign quadrants)."""
    _check_n(n_samples, "make_xor")
    rng = _rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n_samples, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    return _finish(X, y, rng, False, noise)


def make_blobs(
    n_samples: int = 100,
    n_features: int = 2,
    centers: int | np.ndarray = 3,
    cluster_std: float = 1.0,
    center_box: tuple[float, float] = (-10.0, 10.0),
    seed: Seed = None,
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters around `centers` (a count, drawn uniformly in `center_box`, or an
    array of shape (k, n_features)), as sklearn.datasets.make_blobs."""
    _check_n(n_samples, "make_blobs")
    rng = _rng(seed)
    if isinstance(centers, int):
        if centers < 1:
            raise ValueError(f"make_blobs: centers must be >= 1, got {centers}")
        c = rng.uniform(center_box[0], center_box[1], size=(centers, n_features))
    else:
        c = np.asarray(centers, dtype=np.float64)
        if c.ndim != 2 or c.shape[1] != n_features:
            raise ValueError(
                f"make_blobs: centers must have shape (k, {n_features}), got {c.shape}"
            )
    k = len(c)
    sizes = [n_samples // k + (i < n_samples % k) for i in range(k)]
    X = np.vstack([rng.normal(c[i], cluster_std, size=(sizes[i], n_features)) for i in range(k)])
    y = np.concatenate([np.full(s, i, dtype=np.int64) for i, s in enumerate(sizes)])
    return _finish(X, y, rng, shuffle, None)


# -----------------------------------------------------------------------------------------
# CSV
# -----------------------------------------------------------------------------------------


@dataclass
class Dataset:
    """A labelled table.

    Attributes:
        X: float64 features, shape (n_samples, n_features).
        y: int64 class indices 0..k-1, shape (n_samples,).
        feature_names: the feature columns' names.
        classes: the label of each class index, as written in the file (sorted: numerically
            when every label is a number, else as text).
        target: the target column's name.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    classes: list[str]
    target: str = "target"
    source: str = field(default="", repr=False)


def _class_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


#: The largest CSV file read, in bytes (checked before reading it): about 6 million
#: cells of ten characters, far more than a network of scalar Values trains on.
MAX_CSV_BYTES = 64 * 1024 * 1024


def _read_table(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header of a CSV and an iterator over its data rows as `(row number, cells)`.

    A row's number is the file's line where it ends, the header's being 1 when the file
    starts with it, as an editor shows them. Blank rows are skipped. The file must be a
    regular file of at most `MAX_CSV_BYTES` (`autograd.files.read_regular`).
    """
    data = read_regular(path, MAX_CSV_BYTES, "CSV file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    del data
    reader = csv.reader(io.StringIO(text, newline=""))

    def records() -> Iterator[tuple[int, list[str]]]:
        try:
            for row in reader:
                if any(cell.strip() for cell in row):
                    yield reader.line_num, row
        except csv.Error as e:
            raise ValueError(f"{path}: not a valid CSV file (row {reader.line_num}: {e})") from None

    rows = records()
    first = next(rows, None)
    if first is None:
        raise ValueError(f"{path}: the file is empty (expected a header row and data rows)")
    header = [h.strip() for h in first[1]]
    # A repeated name would make header.index() pick one of the columns silently.
    seen: dict[str, int] = {}
    for i, name in enumerate(header, start=1):
        if name in seen:
            raise ValueError(
                f"{path}: the header names column {name!r} twice (columns {seen[name]} and {i})"
            )
        seen[name] = i
    return header, rows


def _number(path: Path, line: int, column: str, cell: str) -> float:
    """A feature cell as a finite float, or a ValueError naming the row and column."""
    cell = cell.strip()
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(
            f"{path}: row {line}, column {column!r}: {cell!r} is not a number"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"{path}: row {line}, column {column!r}: {cell!r} is not finite")
    return value


def load_csv(
    path: str | Path,
    target: str,
    features: list[str] | None = None,
    classes: list[str] | None = None,
) -> Dataset:
    """Read a classification table from a CSV file with a header row.

    Args:
        path: the file.
        target: the name of the label column (any text or numbers; each distinct value is a
            class).
        features: the feature columns to use (default: every column but the target).
        classes: the class labels in index order (default: the distinct labels, sorted);
            give them to read new data with a model's classes.
    Returns:
        A `Dataset`.
    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: an empty file, a column name used twice (both positions named), a
            missing column (the available ones are listed), a row with the wrong number of
            cells or a non-numeric feature cell (row number as in the file, counting the
            header as row 1, and column name), fewer than two classes, or a label not among
            `classes`.
    """
    path = Path(path)
    header, rows = _read_table(path)
    if target not in header:
        raise ValueError(f"{path}: no column {target!r}; the columns are {header}")
    if features is None:
        features = [h for h in header if h != target]
    for name in features:
        if name not in header:
            raise ValueError(f"{path}: no column {name!r}; the columns are {header}")
    if not features:
        raise ValueError(f"{path}: no feature columns besides the target {target!r}")
    t_col = header.index(target)
    f_cols = [header.index(name) for name in features]
    # Filled row by row (8 bytes a cell), so the file's text is never held as cells.
    values = array("d")
    labels: list[str] = []
    lines: list[int] = []
    for line, row in rows:
        if len(row) != len(header):
            raise ValueError(
                f"{path}: row {line} has {len(row)} cells, the header has {len(header)}"
            )
        values.extend(_number(path, line, features[j], row[c]) for j, c in enumerate(f_cols))
        label = row[t_col].strip()
        if not label:
            raise ValueError(f"{path}: row {line}, column {target!r}: the label is empty")
        labels.append(label)
        lines.append(line)
    if not labels:
        raise ValueError(f"{path}: the file has a header but no data rows")
    X = np.frombuffer(values, dtype=np.float64).reshape(len(labels), len(features)).copy()
    if classes is None:
        # One class per distinct label ("1" and "1.0" are one class, spelled as first seen).
        first: dict[str, str] = {}
        for label in labels:
            first.setdefault(_canonical(label), label)
        classes = sorted(first.values(), key=_class_key)
        if len(classes) < 2:
            raise ValueError(
                f"{path}: column {target!r} has a single class ({classes[0]!r}); "
                "classification needs at least two"
            )
    index = {_canonical(c): i for i, c in enumerate(classes)}
    y = np.empty(len(labels), dtype=np.int64)
    for r, label in enumerate(labels):
        key = _canonical(label)
        if key not in index:
            raise ValueError(
                f"{path}: row {lines[r]}, column {target!r}: label {label!r} is not one of "
                f"the model's classes {classes}"
            )
        y[r] = index[key]
    return Dataset(X, y, list(features), list(classes), target, str(path))


def _canonical(label: str) -> str:
    # "1" and "1.0" are the same class.
    try:
        return repr(float(label))
    except ValueError:
        return label


def read_features(path: str | Path, features: list[str]) -> np.ndarray:
    """Read just the feature columns `features` of a CSV (for predictions; no target needed).

    Every cell must be a finite number, as for training (`load_csv`).

    Raises:
        FileNotFoundError, ValueError: as `load_csv`.
    """
    path = Path(path)
    header, rows = _read_table(path)
    missing = [name for name in features if name not in header]
    if missing:
        raise ValueError(f"{path}: no column {missing[0]!r}; the columns are {header}")
    cols = [header.index(name) for name in features]
    values = array("d")
    n = 0
    for line, row in rows:
        if len(row) != len(header):
            raise ValueError(
                f"{path}: row {line} has {len(row)} cells, the header has {len(header)}"
            )
        values.extend(_number(path, line, features[j], row[c]) for j, c in enumerate(cols))
        n += 1
    if n == 0:
        raise ValueError(f"{path}: the file has a header but no data rows")
    return np.frombuffer(values, dtype=np.float64).reshape(n, len(features)).copy()


#: The real data sets shipped in `nn/datasets/`: name -> (file, target column).
DATASETS = {
    "iris": ("iris.csv", "species"),
    "breast_cancer": ("breast_cancer.csv", "diagnosis"),
    "digits": ("digits.csv", "digit"),
}


def load_dataset(name: str) -> Dataset:
    """One of the bundled real data sets: "iris" (150 x 4, 3 classes), "breast_cancer"
    (569 x 30, 2 classes) or "digits" (1,797 x 64, 10 classes: 8x8 images of handwritten
    digits). Sources and licences: `nn/datasets/README.md`.

    Raises:
        ValueError: an unknown name (the known ones are listed).
    """
    if name not in DATASETS:
        raise ValueError(
            f"load_dataset: unknown data set {name!r}; choose one of {sorted(DATASETS)}"
        )
    filename, target = DATASETS[name]
    with resources.as_file(resources.files("nn") / "datasets" / filename) as path:
        return load_csv(path, target=target)


# -----------------------------------------------------------------------------------------
# Splits and scaling
# -----------------------------------------------------------------------------------------


def train_test_split(
    X: Any,
    y: Any,
    test_size: float = 0.25,
    seed: Seed = None,
    stratify: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split into training and test parts at random: `X_train, X_test, y_train, y_test`
    (scikit-learn's order).

    Args:
        test_size: the fraction held out, in [0, 1); the test part has ceil(test_size * n)
            samples, as in scikit-learn. 0 gives an empty test part.
        stratify: keep each class's share (nearly) the same in both parts.
    Raises:
        ValueError: X and y differ in length, or test_size is outside [0, 1).
    """
    X = np.asarray(X)
    y = np.asarray(y)
    n = len(y)
    if len(X) != n:
        raise ValueError(f"train_test_split: X has {len(X)} rows but y has {n}")
    if not 0.0 <= test_size < 1.0:
        raise ValueError(f"train_test_split: test_size must be in [0, 1), got {test_size!r}")
    rng = _rng(seed)
    n_test = math.ceil(test_size * n)
    if stratify:
        # Each class gives its share of the n_test test samples: floor(n_test * n_c / n),
        # and the samples left over go to the classes with the largest remainders
        # (scikit-learn's StratifiedShuffleSplit allocates the same way).
        labels, counts = np.unique(y, return_counts=True)
        exact = n_test * counts / n
        quota = np.floor(exact).astype(int)
        for i in np.argsort(-(exact - quota), kind="stable")[: n_test - quota.sum()]:
            quota[i] += 1
        test = np.zeros(n, dtype=bool)
        for c, q in zip(labels, quota):
            test[rng.permutation(np.flatnonzero(y == c))[:q]] = True
        perm = rng.permutation(n)
        train_idx, test_sel = perm[~test[perm]], perm[test[perm]]
    else:
        perm = rng.permutation(n)
        test_sel, train_idx = perm[:n_test], perm[n_test:]
    return X[train_idx], X[test_sel], y[train_idx], y[test_sel]


class StandardScaler:
    """Standardise features: (x - mean) / std, with mean and std from the data given to
    `fit` (the training split only, so nothing leaks from the test split).

    Attributes (after `fit`): `mean_`, `scale_` (the standard deviation, 1.0 where a column
    is constant), scikit-learn's names.
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, X: Any) -> StandardScaler:
        """Learn each column's mean and standard deviation. Returns self.

        Computed on the column divided by its largest magnitude and scaled back, so values
        near the float64 limit (1e308) give a finite mean and deviation instead of
        overflowing in the sum of squares.

        Raises:
            ValueError: not a non-empty 2-D array, or a NaN or infinite entry (named).
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(f"StandardScaler.fit: expected a non-empty 2-D array, got {X.shape}")
        bad = np.argwhere(~np.isfinite(X))
        if len(bad):
            i, j = bad[0]
            raise ValueError(
                f"StandardScaler.fit: X[{i}, {j}] is {float(X[i, j])!r}, expected finite"
            )
        size = np.abs(X).max(axis=0)
        size = np.where(size > 0, size, 1.0)
        unit = X / size
        self.mean_ = unit.mean(axis=0) * size
        std = unit.std(axis=0) * size
        # A constant column would divide by zero; leave it centred but unscaled.
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """(X - mean_) / scale_.

        Raises:
            ValueError: before `fit`, a wrong width, or a value so far from the fitted
                data that its standardised value overflows float64 (row and column named).
        """
        if self.mean_ is None or self.scale_ is None:
            raise ValueError("StandardScaler.transform: call fit first")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.mean_):
            raise ValueError(
                f"StandardScaler.transform: expected {len(self.mean_)} columns, got shape {X.shape}"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            Z = (X - self.mean_) / self.scale_
            bad = ~np.isfinite(Z)
            if bad.any():
                # x - mean can overflow where x / scale - mean / scale does not.
                Z = np.where(bad, X / self.scale_ - self.mean_ / self.scale_, Z)
        bad = np.argwhere(~np.isfinite(Z))
        if len(bad):
            i, j = bad[0]
            raise ValueError(
                f"StandardScaler.transform: X[{i}, {j}] = {float(X[i, j])!r} is not finite "
                f"once standardised (mean {float(self.mean_[j])!r}, scale "
                f"{float(self.scale_[j])!r})"
            )
        return Z

    def fit_transform(self, X: Any) -> np.ndarray:
        """fit(X), then transform(X)."""
        return self.fit(X).transform(X)
