"""Toy generators, CSV loading and its errors, bundled data sets, splits, scaling."""

import re
from pathlib import Path

import numpy as np
import pytest

import nn
from nn import data

WINE = Path(__file__).parent / "data" / "wine.csv"


@pytest.mark.parametrize("n", [10, 11, 100])
def test_make_moons_equals_sklearn_without_noise(n):
    sk = pytest.importorskip("sklearn.datasets")
    X, y = nn.make_moons(n, shuffle=False)
    Xs, ys = sk.make_moons(n, shuffle=False)
    np.testing.assert_array_equal(X, Xs)
    np.testing.assert_array_equal(y, ys)


def test_make_circles_equals_sklearn_without_noise():
    sk = pytest.importorskip("sklearn.datasets")
    X, y = nn.make_circles(30, shuffle=False, factor=0.5)
    Xs, ys = sk.make_circles(30, shuffle=False, factor=0.5)
    np.testing.assert_allclose(X, Xs, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(y, ys)


@pytest.mark.parametrize(
    "make, classes",
    [
        (lambda s: nn.make_moons(50, noise=0.1, seed=s), 2),
        (lambda s: nn.make_circles(50, noise=0.05, seed=s), 2),
        (lambda s: nn.make_spirals(51, noise=0.02, n_classes=3, seed=s), 3),
        (lambda s: nn.make_xor(50, seed=s), 2),
        (lambda s: nn.make_blobs(50, centers=4, seed=s), 4),
    ],
)
def test_generators_are_seeded_and_shaped(make, classes):
    X, y = make(3)
    X2, y2 = make(3)
    X3, _ = make(4)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, X3)
    assert X.dtype == np.float64 and y.dtype == np.int64
    assert X.shape[1] == 2 and len(X) == len(y)
    assert sorted(set(y.tolist())) == list(range(classes))


def test_make_xor_labels_are_same_sign_quadrants():
    X, y = nn.make_xor(200, seed=0)
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] > 0).astype(int))


def test_bundled_datasets():
    iris = nn.load_dataset("iris")
    assert iris.X.shape == (150, 4) and iris.classes == ["setosa", "versicolor", "virginica"]
    assert np.bincount(iris.y).tolist() == [50, 50, 50]
    bc = nn.load_dataset("breast_cancer")
    assert bc.X.shape == (569, 30) and bc.classes == ["benign", "malignant"]
    assert np.bincount(bc.y).tolist() == [357, 212]
    sk = pytest.importorskip("sklearn.datasets")
    np.testing.assert_array_equal(iris.X, sk.load_iris().data)
    np.testing.assert_array_equal(bc.X, sk.load_breast_cancer().data)
    with pytest.raises(ValueError, match="unknown data set 'mnist'"):
        nn.load_dataset("mnist")


def test_load_csv_reads_a_public_table():
    d = nn.load_csv(WINE, target="cultivar")
    assert d.X.shape == (178, 13)
    assert d.classes == ["class_0", "class_1", "class_2"]
    assert d.feature_names[0] == "alcohol" and d.X[0, 0] == 14.23


def _write(tmp_path, text, name="t.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_numeric_labels_sort_numerically(tmp_path):
    p = _write(tmp_path, "a,label\n1,10\n2,9\n3,10.0\n")
    d = nn.load_csv(p, target="label")
    assert d.classes == ["9", "10"]
    assert d.y.tolist() == [1, 0, 1]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the file is empty"),
        ("a,b,label\n", "a header but no data rows"),
        ("a,b,y\n1,2,0\n", "no column 'label'; the columns are \\['a', 'b', 'y'\\]"),
        ("a,b,label\n1,2,0\n3,oops,1\n", "row 3, column 'b': 'oops' is not a number"),
        ("a,b,label\n1,2,0\n3,4\n", "row 3 has 2 cells, the header has 3"),
        ("a,b,label\n1,2,0\n3,4,0\n", "column 'label' has a single class \\('0'\\)"),
        ("a,b,label\n1,inf,0\n3,4,1\n", "row 2, column 'b': 'inf' is not finite"),
        ("a,b,label\n1,2,\n3,4,1\n", "row 2, column 'label': the label is empty"),
    ],
)
def test_load_csv_errors_name_file_row_and_column(tmp_path, text, message):
    p = _write(tmp_path, text)
    with pytest.raises(ValueError, match=message) as info:
        nn.load_csv(p, target="label")
    assert str(p) in str(info.value)


def test_load_csv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.csv: no such file"):
        nn.load_csv(tmp_path / "nope.csv", target="y")


def test_train_test_split_sizes_and_stratification():
    X = np.arange(200).reshape(100, 2).astype(float)
    y = np.array([0] * 80 + [1] * 20)
    Xtr, Xte, ytr, yte = nn.train_test_split(X, y, test_size=0.25, seed=0)
    assert len(Xte) == 25 and len(Xtr) == 75
    # Nothing lost, nothing duplicated; rows stay with their labels.
    assert sorted(np.concatenate([Xtr[:, 0], Xte[:, 0]]).tolist()) == X[:, 0].tolist()
    np.testing.assert_array_equal(y[(Xte[:, 0] / 2).astype(int)], yte)
    _, _, ytr, yte = nn.train_test_split(X, y, test_size=0.25, seed=1, stratify=True)
    assert np.bincount(yte).tolist() == [20, 5] and np.bincount(ytr).tolist() == [60, 15]
    a = nn.train_test_split(X, y, 0.25, seed=3)
    b = nn.train_test_split(X, y, 0.25, seed=3)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    with pytest.raises(ValueError, match=r"test_size must be in \[0, 1\), got 1\.5"):
        nn.train_test_split(X, y, 1.5)
    with pytest.raises(ValueError, match="X has 100 rows but y has 3"):
        nn.train_test_split(X, y[:3])


def test_standard_scaler_is_fitted_on_the_training_split_only():
    Xtr = np.array([[1.0, 5.0], [3.0, 5.0]])
    Xte = np.array([[5.0, 6.0]])
    sc = nn.StandardScaler().fit(Xtr)
    np.testing.assert_array_equal(sc.mean_, [2.0, 5.0])
    np.testing.assert_array_equal(sc.scale_, [1.0, 1.0])  # constant column: scale 1
    np.testing.assert_array_equal(sc.transform(Xte), [[3.0, 1.0]])
    with pytest.raises(ValueError, match="call fit first"):
        data.StandardScaler().transform(Xte)
    with pytest.raises(ValueError, match="expected 2 columns"):
        sc.transform(np.zeros((1, 3)))


@pytest.mark.parametrize(
    "header, name, columns",
    [("a,a,label", "a", "1 and 2"), ("a,label,b, a ", "a", "1 and 4"), ("x,y,y", "y", "2 and 3")],
)
def test_duplicate_column_names_are_refused(tmp_path, header, name, columns):
    row = ",".join(["1"] * (header.count(",") + 1))
    p = _write(tmp_path, f"{header}\n{row}\n{row}\n")
    message = f"the header names column {name!r} twice (columns {columns})"
    with pytest.raises(ValueError, match=re.escape(message)):
        data.load_csv(p, target="label" if "label" in header else "x")
    # Reading features for a prediction refuses it too.
    with pytest.raises(ValueError, match=re.escape(message)):
        data.read_features(p, [name])
