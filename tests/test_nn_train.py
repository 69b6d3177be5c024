"""fit, evaluate, predict, predict_proba, History, divergence handling."""

import math

import numpy as np
import pytest

import nn
from nn import train


def _moons(n=40, seed=0):
    return nn.make_moons(n, noise=0.1, seed=seed)


def test_fit_records_one_entry_per_epoch_with_validation():
    X, y = _moons()
    Xv, yv = _moons(20, seed=1)
    model = nn.MLP(2, [8, 1], seed=0, init="micrograd")
    opt = nn.SGD(model.parameters(), lr=0.5)
    sched = nn.LinearLR(opt, 1.0, 0.1, 6)
    h = nn.fit(
        model,
        X,
        y,
        "hinge",
        opt,
        epochs=6,
        scheduler=sched,
        validation_data=(Xv, yv),
        progress=False,
    )
    assert h.epochs == 6
    assert len(h.accuracy) == len(h.val_loss) == len(h.val_accuracy) == len(h.lr) == 6
    assert h.lr[0] == 0.5 and math.isclose(h.lr[1], 0.5 * 0.85)
    assert h.loss[-1] < h.loss[0]
    assert (h.val_loss[-1], h.val_accuracy[-1]) == nn.evaluate(model, Xv, yv, "hinge")
    assert set(h.to_dict()) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}


@pytest.mark.parametrize("loss", ["hinge", "bce", "mse", nn.hinge_loss])
def test_binary_losses_learn_and_agree_with_predict(loss):
    X, y = _moons(60)
    model = nn.MLP(2, [12, 12, 1], seed=1, init="micrograd")
    opt = nn.Adam(model.parameters(), lr=0.05)
    h = nn.fit(model, X, y, loss, opt, epochs=25, batch_size=20, seed=0, progress=False)
    assert h.accuracy[-1] >= 0.85
    assert np.mean(nn.predict(model, X, loss) == y) == h.accuracy[-1]


def test_cross_entropy_multiclass_and_probabilities():
    X, y = nn.make_blobs(60, centers=3, cluster_std=0.5, seed=0)
    X = nn.StandardScaler().fit_transform(X)
    model = nn.MLP(2, [8, 3], seed=0)
    opt = nn.Adam(model.parameters(), lr=0.05)
    h = nn.fit(model, X, y, "cross_entropy", opt, epochs=15, progress=False)
    assert h.accuracy[-1] == 1.0
    p = nn.predict_proba(model, X)
    assert p.shape == (60, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_array_equal(p.argmax(axis=1), nn.predict(model, X, "cross_entropy"))
    # Probabilities equal the softmax of the Value outputs.
    out = [o.data for o in model(X[0])]
    e = np.exp(np.array(out) - max(out))
    np.testing.assert_allclose(p[0], e / e.sum(), rtol=1e-13)


def test_predict_proba_for_one_logit_is_sigmoid():
    model = nn.MLP(2, [3, 1], seed=0)
    X = np.array([[0.5, -0.5], [2.0, 1.0]])
    p = nn.predict_proba(model, X)
    z = np.array([model(x).data for x in X])
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-z)), rtol=1e-13)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_same_seed_same_history():
    X, y = _moons()

    def run():
        model = nn.MLP(2, [6, 1], seed=4)
        return nn.fit(
            model,
            X,
            y,
            "hinge",
            nn.SGD(model.parameters(), lr=0.2),
            epochs=4,
            batch_size=7,
            seed=9,
            progress=False,
        ).to_dict()

    assert run() == run()


def test_divergence_names_epoch_and_batch_and_restores_good_weights():
    X, y = _moons(20)
    model = nn.MLP(2, [8, 1], seed=0)
    opt = nn.SGD(model.parameters(), lr=1e200)
    with pytest.raises(nn.DivergenceError, match=r"epoch \d+, batch 1") as info:
        nn.fit(model, X, y, "mse", opt, epochs=5, progress=False)
    assert info.value.epoch >= 1 and info.value.batch == 1
    assert "smaller learning rate" in str(info.value)
    sd = model.state_dict()
    assert all(np.all(np.isfinite(a)) for a in sd.values())
    # The weights kept are ones whose loss is finite.
    assert math.isfinite(nn.evaluate(model, X, y, "mse")[0])


def test_fit_rejects_bad_arguments():
    X, y = _moons(10)
    model = nn.MLP(2, [3, 1], seed=0)
    opt = nn.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="epochs must be a positive int, got 0"):
        nn.fit(model, X, y, "hinge", opt, epochs=0, progress=False)
    with pytest.raises(ValueError, match="X has 10 rows but y has shape \\(9,\\)"):
        nn.fit(model, X, y[:9], "hinge", opt, progress=False)
    with pytest.raises(ValueError, match="unknown name 'l1'"):
        nn.fit(model, X, y, "l1", opt, progress=False)
    with pytest.raises(ValueError, match="hinge loss: needs two classes"):
        nn.fit(model, X, y + 1, "hinge", opt, progress=False)


def test_progress_bar_only_on_a_terminal(monkeypatch):
    assert not train._progress_enabled(False)

    class Tty:
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stderr", Tty())
    assert train._progress_enabled(True)
    monkeypatch.setattr("sys.stderr", type("P", (), {"isatty": lambda self: False})())
    assert not train._progress_enabled(True)


@pytest.mark.slow
def test_micrograd_demo_reaches_full_training_accuracy():
    # The `chainrule train` defaults: 100 noisy moons, 2-16-16-1, hinge, SGD 1.0 -> 0.1.
    X, y = nn.make_moons(100, noise=0.1, seed=0)
    model = nn.MLP(2, [16, 16, 1], init="micrograd", seed=0)
    opt = nn.SGD(model.parameters(), lr=1.0, weight_decay=1e-4)
    sched = nn.LinearLR(opt, 1.0, 0.1, 100)
    h = nn.fit(model, X, y, "hinge", opt, epochs=100, scheduler=sched, progress=False)
    assert h.accuracy[-1] == 1.0


def test_plots_are_drawn_from_numpy_weights(tmp_path, monkeypatch):
    from nn import plot

    X, y = _moons(20)
    model = nn.MLP(2, [4, 1], seed=0)
    h = nn.fit(
        model,
        X,
        y,
        "hinge",
        nn.SGD(model.parameters(), lr=0.1),
        epochs=2,
        validation_data=(X, y),
        progress=False,
    )
    plot.plot_history(h, tmp_path / "loss.png", title="t")
    # The boundary needs no Values: a model call would fail here.
    monkeypatch.setattr(nn.MLP, "__call__", lambda self, x: 1 / 0)
    plot.plot_decision_boundary(model, X, y, tmp_path / "b.png", resolution=50)
    for name in ("loss.png", "b.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="needs 2-D points"):
        plot.plot_decision_boundary(model, np.zeros((3, 3)), y[:3], tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


@pytest.mark.parametrize("where", ["batch", "measure"])
def test_divergence_message_is_one_short_line(where):
    # The engine's overflow message for a wide `linear` node lists every input; the
    # divergence message keeps its start (which op, what went wrong) on one line.
    X, y = _moons(6)
    inner = nn.MLP(2, [3, 1], seed=0)
    calls = {"n": 0}

    def model(row):
        calls["n"] += 1
        # One probe, the untrained model's measure (6 calls), the batch forward (6), then the
        # epoch's measure.
        if (where == "batch" and calls["n"] > 7) or (where == "measure" and calls["n"] > 13):
            raise OverflowError(
                "linear: result -inf is not finite for finite input(s)\n"
                + ", ".join(["-1.0957469098e+117"] * 60)
            )
        return inner(row)

    model.parameters = inner.parameters  # what fit reads from the model
    opt = nn.SGD(inner.parameters(), lr=0.1)
    with pytest.raises(nn.DivergenceError) as info:
        nn.fit(model, X, y, "mse", opt, epochs=2, progress=False)
    message = str(info.value)
    assert "\n" not in message and len(message) < 300, message
    assert message.startswith("training diverged at epoch 1, batch 1: the forward pass failed ")
    assert "(linear: result -inf is not finite for finite input(s) -1.0957469098e+117" in message
    assert "...); the model keeps the untrained weights" in message


# -- divergence: growth by orders of magnitude, and the weights kept -------------------------


@pytest.mark.parametrize(
    "loss, best, initial, diverged",
    [
        (float("nan"), 1.0, 1.0, "the loss is nan"),
        (float("inf"), 1.0, 1.0, "the loss is inf"),
        (1e4, 1.0, 1.0, "the loss grew to 1e+04, more than 100 times its best (1; untrained 1)"),
        (101.0, 1.0, 1.0, "the loss grew to 101"),
        (99.0, 1.0, 1.0, None),  # within two orders of magnitude
        (0.5, 1e-3, 1.0, None),  # 500 times its best, but still below the untrained loss
        (2.0, 1e-3, 1.0, "the loss grew to 2"),
        (0.0, 0.0, 1.0, None),
    ],
)
def test_check_divergence(loss, best, initial, diverged):
    from nn.train import check_divergence

    reason = check_divergence(loss, best, initial)
    if diverged is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith(diverged), reason


def test_a_growing_loss_stops_training_before_anything_overflows():
    X, y = _moons(40)
    model = nn.MLP(2, [16, 16, 1], init="micrograd", seed=0)
    untrained = [p.data for p in model.parameters()]
    with pytest.raises(nn.DivergenceError) as info:
        nn.fit(model, X, y, "hinge", nn.SGD(model.parameters(), lr=1e6), epochs=4, progress=False)
    assert str(info.value).startswith("training diverged at epoch 1, batch 1: the loss grew to ")
    assert "the model keeps the untrained weights" in str(info.value)
    assert info.value.epoch == 1 and info.value.history.epochs == 0
    assert [p.data for p in model.parameters()] == untrained


def test_with_mini_batches_the_weights_kept_are_those_of_the_last_measured_epoch():
    # Two calm epochs at lr 0.05, then StepLR multiplies the rate by 1e7: the third epoch
    # diverges somewhere in its batches. The model must hold the weights after epoch 2 (whose
    # whole-set loss was measured), not those before the failing batch.
    X, y = _moons(40)

    def run(epochs):
        model = nn.MLP(2, [8, 1], seed=0)
        opt = nn.SGD(model.parameters(), lr=0.05)
        sched = nn.StepLR(opt, step_size=2, gamma=1e7)
        kwargs = dict(epochs=epochs, batch_size=4, scheduler=sched, seed=3, progress=False)
        return model, nn.fit(model, X, y, "mse", opt, **kwargs)

    calm, history = run(2)
    model = nn.MLP(2, [8, 1], seed=0)
    opt = nn.SGD(model.parameters(), lr=0.05)
    sched = nn.StepLR(opt, step_size=2, gamma=1e7)
    with pytest.raises(nn.DivergenceError) as info:
        nn.fit(model, X, y, "mse", opt, epochs=5, batch_size=4, scheduler=sched, seed=3,
               progress=False)  # fmt: skip
    assert info.value.epoch == 3 and info.value.history.loss == history.loss
    assert "the model keeps the weights of epoch 2" in str(info.value)
    assert [p.data for p in model.parameters()] == [p.data for p in calm.parameters()]
    loss, _ = nn.evaluate(model, X, y, "mse")
    assert loss == history.loss[-1]  # finite, measured on the whole set


@pytest.mark.parametrize("engine", ["tape", "values"])
def test_an_overflow_in_validation_is_divergence_not_a_bare_error(engine, monkeypatch):
    X, y = _moons(20)
    model = nn.MLP(2, [4, 1], seed=0)
    X_val, y_val = X[:7], y[:7]
    runner = nn.train._TapeEngine if engine == "tape" else nn.train._ValuesEngine
    real = runner.measure
    calls = {"validation": 0}

    def measure(self, X, y):  # the validation forward overflows after the untrained measure
        if X is not None:
            calls["validation"] += 1
            if calls["validation"] > 1:
                raise OverflowError("linear: result inf is not finite for finite input(s)")
        return real(self, X, y)

    monkeypatch.setattr(runner, "measure", measure)
    with pytest.raises(nn.DivergenceError) as info:
        nn.fit(model, X, y, "hinge", nn.SGD(model.parameters(), lr=0.1), epochs=3,
               validation_data=(X_val, y_val), progress=False, engine=engine)  # fmt: skip
    message = str(info.value)
    assert message.startswith("training diverged at epoch 1, batch 1: the forward pass on the ")
    assert "validation data failed (linear: result inf" in message
    assert "the model keeps the untrained weights" in message
    assert [p.data for p in model.parameters()] == [
        p.data for p in nn.MLP(2, [4, 1], seed=0).parameters()
    ]


def test_validation_data_too_large_for_the_untrained_model_is_a_data_error():
    X, y = _moons(20)
    model = nn.MLP(2, [4, 1], seed=0)
    with pytest.raises(ValueError, match="loss on validation_data is not finite"):
        nn.fit(model, X, y, "mse", nn.SGD(model.parameters(), lr=0.1), epochs=1,
               validation_data=(X * 1e300, y), progress=False)  # fmt: skip
