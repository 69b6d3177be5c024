"""The nn cases N01-N06 (inputs that broke other engines' training loops), one test each."""

import json
import math

import numpy as np
import pytest

import nn
from autograd import Value, topological_order


def test_N01_layers_of_one_neuron_compose_and_bare_scalar_input():
    model = nn.MLP(2, [16, 1, 1], seed=0)
    out = model([1.0, -2.0])
    assert isinstance(out, Value)
    assert math.isfinite(out.data)
    out.backward()
    assert out.grad == 1.0
    # Every parameter got a gradient slot filled by the pass (finite numbers).
    assert all(math.isfinite(p.grad) for p in model.parameters())

    a = nn.MLP(1, [4, 1], seed=7)(1.0)
    b = nn.MLP(1, [4, 1], seed=7)([1.0])
    assert a.data == b.data


class _OneWeight(nn.Module):
    def __init__(self):
        self.w = Value(1.0, label="w")

    def _parameter_arrays(self):
        arr = np.empty(1, dtype=object)
        arr[0] = self.w
        return {"w": arr}


def test_N02_zero_grad_between_steps():
    model = _OneWeight()
    opt = nn.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        model.zero_grad()
        loss = model.w**2
        loss.backward()
        opt.step()
    assert math.isclose(model.w.data, 0.64, abs_tol=1e-12)

    # Without zero_grad the gradients pile up: 1.0 -> 0.8 -> 0.8 - 0.1 * (2 + 1.6) = 0.44.
    stale = _OneWeight()
    opt = nn.SGD(stale.parameters(), lr=0.1)
    for _ in range(2):
        (stale.w**2).backward()
        opt.step()
    assert math.isclose(stale.w.data, 0.44, abs_tol=1e-12)
    assert not math.isclose(stale.w.data, 0.64, abs_tol=1e-3)


def test_N03_graph_does_not_grow_and_parameters_stay_leaves():
    model = nn.MLP(2, [4, 1], seed=0)
    params = model.parameters()
    ids = [id(p) for p in params]
    opt = nn.SGD(params, lr=0.05)
    sizes = []
    for _ in range(3):
        opt.zero_grad()
        loss = nn.hinge_loss([model([0.5, -1.0]), model([-0.3, 0.8])], [1, -1])
        sizes.append(len(topological_order(loss)))
        loss.backward()
        opt.step()
        assert [id(p) for p in model.parameters()] == ids
        assert all(p.is_leaf and p.inputs == () for p in model.parameters())
    assert sizes[0] == sizes[1] == sizes[2]


def test_N04_reported_final_loss_is_the_loss_of_the_final_weights():
    X, y = nn.make_moons(40, noise=0.1, seed=1)
    model = nn.MLP(2, [8, 1], seed=1)
    opt = nn.SGD(model.parameters(), lr=0.3)
    history = nn.fit(model, X, y, "hinge", opt, epochs=5, progress=False)
    recomputed = nn.hinge_loss([model(x) for x in X], 2.0 * y - 1.0)
    assert math.isclose(history.loss[-1], recomputed.data, abs_tol=1e-12)
    loss, acc = nn.evaluate(model, X, y, "hinge")
    assert math.isclose(history.loss[-1], loss, abs_tol=1e-12)
    assert acc == history.accuracy[-1]


# -- N05, N06: the command's defaults -------------------------------------------------------


def _train(tmp_path, capsys, *argv):
    from nn import cli

    out = tmp_path / "run"
    status = cli.main(["train", *map(str, argv), "--no-progress", "--out", str(out)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err, out


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["moons", "circles", "spirals", "xor", "blobs"])
def test_N05_every_generated_data_set_trains_with_its_defaults(tmp_path, capsys, dataset):
    status, _, err, out = _train(tmp_path, capsys, "--dataset", dataset)
    assert status == 0 and err == "", err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_accuracy"] >= 0.95, metrics["train_accuracy"]
    assert metrics["history"]["loss"][-1] < metrics["history"]["loss"][0]


def test_N05_blobs_are_standardised_and_the_scaler_saved(tmp_path, capsys):
    # Blobs' centres lie up to 10 from the origin: unscaled, SGD at lr 1.0 jumped to a loss of
    # tens of thousands. The recipe standardises them, and predict applies the same scaling.
    status, _, err, out = _train(tmp_path, capsys, "--dataset", "blobs", "--epochs", "3")
    assert status == 0, err
    scaler = json.loads((out / "model.json").read_text())["metadata"]["scaler"]
    X, _ = nn.make_blobs(100, seed=0)
    np.testing.assert_allclose(scaler["mean"], X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scaler["scale"], X.std(axis=0), rtol=1e-12)


def test_N06_a_diverging_run_stops_naming_the_learning_rate(tmp_path, capsys):
    status, stdout, err, out = _train(tmp_path, capsys, "--lr", "1e6", "--epochs", "4")
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("chainrule train: error: training diverged at epoch 1")
    assert "the loss grew to " in err  # by orders of magnitude, long before an overflow
    assert err.rstrip().endswith("(--lr is 1e+06)")
    assert not out.exists()  # no model at all, so none with astronomically large weights
    assert "wrote" not in stdout


@pytest.mark.parametrize("lr", ["30", "1e3", "1e30", "1e300"])
def test_N06_any_diverging_rate_writes_no_model(tmp_path, capsys, lr):
    status, _, err, out = _train(tmp_path, capsys, "--lr", lr, "--epochs", "5", "--samples", "30")
    if status == 0:  # a rate that happens to train must leave sane weights
        weights = json.loads((out / "model.json").read_text())["state_dict"]
        flat = np.concatenate([np.ravel(v) for v in weights.values()])
        assert np.abs(flat).max() < 1e6
    else:
        assert status == 2 and "training diverged" in err and f"(--lr is {float(lr):g})" in err
        assert not out.exists()
