"""fit on the tape and on Value graphs: the same run, step for step.

`engine="tape"` replays one recorded sample over each batch with numpy; `engine="values"`
builds the Value graphs a learner writes. Every built-in loss and optimiser, mini-batches,
schedules, weight decay and divergence handling must give the same history and weights.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import nn
from nn import cli, train


def _data(kind: str):
    if kind == "blobs":
        X, y = nn.make_blobs(45, centers=3, cluster_std=0.8, seed=0)
        return nn.StandardScaler().fit_transform(X), y
    return nn.make_moons(40, noise=0.1, seed=0)


def _run(engine, loss, optimizer, batch_size, schedule, kind, weight_decay=1e-3, epochs=6):
    X, y = _data(kind)
    Xv, yv = X[::3] + 0.05, y[::3]
    k = int(y.max()) + 1
    n_out = k if loss == "cross_entropy" or (loss == "mse" and k > 2) else 1
    model = nn.MLP(2, [8, 6, n_out], activation="tanh", seed=3)
    if optimizer == "sgd":
        opt = nn.SGD(model.parameters(), lr=0.3, momentum=0.9, weight_decay=weight_decay)
    elif optimizer == "nesterov":
        opt = nn.SGD(model.parameters(), lr=0.2, momentum=0.5, nesterov=True)
    else:
        opt = nn.Adam(model.parameters(), lr=0.05, weight_decay=weight_decay)
    sched = {
        "linear": lambda: nn.LinearLR(opt, 1.0, 0.1, epochs),
        "cosine": lambda: nn.CosineAnnealingLR(opt, epochs),
        "step": lambda: nn.StepLR(opt, 2, 0.5),
        None: lambda: None,
    }[schedule]()
    history = nn.fit(
        model,
        X,
        y,
        loss,
        opt,
        epochs=epochs,
        batch_size=batch_size,
        scheduler=sched,
        validation_data=(Xv, yv),
        seed=7,
        progress=False,
        engine=engine,
    )
    return history, np.concatenate([a.ravel() for a in model.state_dict().values()])


def _assert_same_run(a, b):
    (ha, wa), (hb, wb) = a, b
    for field in ("loss", "val_loss"):
        np.testing.assert_allclose(getattr(ha, field), getattr(hb, field), rtol=1e-9, atol=0)
    assert ha.accuracy == hb.accuracy and ha.val_accuracy == hb.val_accuracy
    assert ha.lr == hb.lr
    np.testing.assert_allclose(wa, wb, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("loss", "optimizer", "batch_size", "schedule", "kind"),
    [
        ("hinge", "sgd", None, "linear", "moons"),
        ("bce", "adam", 16, "cosine", "moons"),
        ("mse", "nesterov", 7, "step", "moons"),
        ("cross_entropy", "adam", None, None, "blobs"),
        ("cross_entropy", "sgd", 10, "linear", "blobs"),
        ("mse", "adam", 20, None, "blobs"),  # several outputs, one-hot targets
    ],
)
def test_tape_and_value_graphs_give_the_same_run(loss, optimizer, batch_size, schedule, kind):
    tape = _run("tape", loss, optimizer, batch_size, schedule, kind)
    values = _run("values", loss, optimizer, batch_size, schedule, kind)
    _assert_same_run(tape, values)
    assert tape[0].loss[-1] < tape[0].loss[0]  # it trained


def test_the_default_engine_is_the_tape_for_nn_models(monkeypatch):
    made = []
    original = train._TapeEngine.__init__

    def spy(self, *args, **kwargs):
        made.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(train._TapeEngine, "__init__", spy)
    X, y = _data("moons")
    model = nn.MLP(2, [4, 1], seed=0)
    nn.fit(model, X, y, "hinge", nn.SGD(model.parameters(), lr=0.1), epochs=1, progress=False)
    assert len(made) == 1
    # A loss of one's own: Value graphs (the tape cannot know how the loss reduces).
    nn.fit(model, X, y, nn.hinge_loss, nn.SGD(model.parameters(), lr=0.1), epochs=1, progress=False)
    nn.fit(
        model, X, y, lambda o, t: nn.hinge_loss(o, [2.0 * v - 1 for v in t]),
        nn.SGD(model.parameters(), lr=0.1), epochs=1, progress=False,
    )  # fmt: skip
    assert len(made) == 2  # nn.hinge_loss itself is built in


def test_the_training_weights_end_up_in_the_model():
    X, y = _data("moons")
    model = nn.MLP(2, [4, 1], seed=0)
    h = nn.fit(model, X, y, "bce", nn.Adam(model.parameters(), lr=0.05), epochs=3, progress=False)
    # history.loss[-1] is the loss of the model's final weights (N04), on the Value graph too.
    assert math.isclose(
        h.loss[-1], nn.evaluate(model, X, y, "bce", engine="values")[0], rel_tol=1e-12
    )
    assert nn.evaluate(model, X, y, "bce") == pytest.approx(
        nn.evaluate(model, X, y, "bce", engine="values"), rel=1e-12
    )
    assert all(p.grad != 0.0 for p in model.parameters()[:4])  # the last gradients too


def test_divergence_is_handled_the_same_on_both_engines():
    X, y = _data("moons")
    results = {}
    for engine in ("tape", "values"):
        model = nn.MLP(2, [8, 1], seed=0)
        opt = nn.SGD(model.parameters(), lr=1e200)
        with pytest.raises(nn.DivergenceError) as info:
            nn.fit(model, X, y, "mse", opt, epochs=5, progress=False, engine=engine)
        sd = model.state_dict()
        assert all(np.all(np.isfinite(a)) for a in sd.values())
        assert math.isfinite(nn.evaluate(model, X, y, "mse", engine="values")[0])
        weights = np.concatenate([a.ravel() for a in sd.values()])
        results[engine] = (info.value.epoch, info.value.batch, weights)
        assert str(info.value).startswith(f"training diverged at epoch {info.value.epoch}, batch")
    assert results["tape"][:2] == results["values"][:2]
    np.testing.assert_allclose(results["tape"][2], results["values"][2], rtol=1e-9)


def test_large_data_trains_in_mini_batches_by_default(monkeypatch):
    monkeypatch.setattr(train, "FULL_BATCH_LIMIT", 30)
    monkeypatch.setattr(train, "DEFAULT_BATCH_SIZE", 16)
    for engine in ("tape", "values"):
        for n, steps in ((30, 1), (40, 3)):
            X, y = nn.make_moons(n, noise=0.1, seed=0)
            model = nn.MLP(2, [3, 1], seed=0)
            opt = nn.SGD(model.parameters(), lr=0.1)
            count = {"n": 0}
            update = opt.update

            def counting(data, grad, update=update, count=count):
                count["n"] += 1
                return update(data, grad)

            opt.update = counting  # type: ignore[method-assign]
            nn.fit(model, X, y, "hinge", opt, epochs=1, progress=False, engine=engine)
            assert count["n"] == steps, (engine, n)


def test_an_optimiser_with_only_step_works_on_the_tape():
    class HalfSGD(nn.optim.Optimizer):
        def step(self):
            for p in self.params:
                p.data -= 0.5 * self.lr * p.grad

    runs = []
    for engine in ("tape", "values"):
        X, y = _data("moons")
        model = nn.MLP(2, [4, 1], seed=0)
        h = nn.fit(model, X, y, "hinge", HalfSGD(model.parameters(), lr=0.2), epochs=3,
                   progress=False, engine=engine)  # fmt: skip
        runs.append(h.loss)
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-12)


def test_bad_engine_choices_are_named():
    X, y = _data("moons")
    model = nn.MLP(2, [3, 1], seed=0)
    opt = nn.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="engine must be 'auto', 'tape' or 'values', got 'fast'"):
        nn.fit(model, X, y, "hinge", opt, progress=False, engine="fast")
    with pytest.raises(ValueError, match="engine='tape' needs a built-in loss"):
        nn.fit(model, X, y, lambda o, t: o[0], opt, progress=False, engine="tape")
    other = nn.MLP(2, [3, 1], seed=1)
    with pytest.raises(ValueError, match="optimiser's parameter 0 is not a parameter of the model"):
        nn.fit(model, X, y, "hinge", nn.SGD(other.parameters(), lr=0.1), progress=False)


def test_a_model_whose_graph_depends_on_the_data_is_refused_by_the_tape():
    class Branchy(nn.Module):
        def __init__(self):
            self.inner = nn.MLP(2, [3, 1], seed=0)

        def __call__(self, x):
            out = self.inner(x)
            return out if x[0] > 0 else -out  # a Python `if` on the data

    X, y = _data("moons")
    model = Branchy()
    opt = nn.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"graph depends on the data.*engine='values'"):
        nn.fit(model, X, y, "hinge", opt, progress=False)
    nn.fit(model, X, y, "hinge", opt, epochs=1, progress=False, engine="values")


# -----------------------------------------------------------------------------------------
# The command line
# -----------------------------------------------------------------------------------------


def _train(tmp_path, capsys, *argv):
    status = cli.main(["train", *argv, "--no-progress", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 0, err
    return json.loads((tmp_path / "metrics.json").read_text())


@pytest.mark.parametrize(
    ("dataset", "epochs"),
    [
        ("moons", 3), ("circles", 3), ("spirals", 3), ("xor", 3), ("blobs", 3),
        ("iris", 3), ("breast_cancer", 2), ("digits", 1),
    ],
)  # fmt: skip
def test_every_dataset_gives_the_same_metrics_on_both_engines(tmp_path, capsys, dataset, epochs):
    argv = ["--dataset", dataset, "--epochs", str(epochs)]
    if dataset in cli.TOY:  # the size of a generated data set (a bundled one has its own)
        argv += ["--samples", "40"]
    tape = _train(tmp_path / "tape", capsys, *argv)
    values = _train(tmp_path / "values", capsys, *argv, "--engine", "values")
    assert values["args"]["engine"] == "values" and tape["args"]["engine"] == "tape"
    for key in ("train_loss", "test_loss"):
        if key in tape:
            assert tape[key] == pytest.approx(values[key], rel=1e-9)
    for key in ("train_accuracy", "test_accuracy"):
        assert tape.get(key) == values.get(key)
    np.testing.assert_allclose(tape["history"]["loss"], values["history"]["loss"], rtol=1e-9)


def test_digits_reach_a_test_accuracy_of_095_with_the_defaults(tmp_path, capsys):
    metrics = _train(tmp_path, capsys, "--dataset", "digits")
    assert metrics["architecture"]["nouts"] == [32, 10]
    assert metrics["test_accuracy"] >= 0.95
    assert cli.main(
        ["predict", "--model", str(tmp_path / "model.json"), "--csv",
         str(nn.data.resources.files("nn") / "datasets" / "digits.csv"), "--out",
         str(tmp_path / "pred.csv")]
    ) == 0  # fmt: skip
    capsys.readouterr()
    lines = (tmp_path / "pred.csv").read_text().splitlines()
    assert lines[0] == "prediction," + ",".join(f"p_{d}" for d in range(10))
    d = nn.load_dataset("digits")
    predicted = np.array([int(line.split(",")[0]) for line in lines[1:]])
    assert len(predicted) == 1797
    assert np.mean(predicted == d.y) >= 0.95


def test_unknown_engine_is_a_usage_error(capsys):
    assert cli.main(["train", "--engine", "fast"]) == 2
    assert "invalid choice: 'fast'" in capsys.readouterr().err


def test_the_progress_bar_shows_the_same_on_both_engines(monkeypatch):
    shown = {}

    class Bar:
        def __init__(self, iterable, **kwargs):
            self.iterable, self.kwargs, self.postfixes = iterable, kwargs, []

        def __iter__(self):
            return iter(self.iterable)

        def set_postfix(self, postfix, refresh=True):
            self.postfixes.append(dict(postfix))

        def close(self):
            pass

    import tqdm.auto

    for engine in ("tape", "values"):
        bars = []
        monkeypatch.setattr(
            tqdm.auto, "tqdm", lambda it, **kw: bars.append(Bar(it, **kw)) or bars[-1]
        )
        monkeypatch.setattr(train, "_progress_enabled", lambda progress: progress)
        X, y = _data("moons")
        model = nn.MLP(2, [4, 1], seed=0)
        nn.fit(model, X, y, "hinge", nn.SGD(model.parameters(), lr=0.1), epochs=3,
               validation_data=(X, y), engine=engine)  # fmt: skip
        (bar,) = bars
        assert bar.kwargs["disable"] is False and bar.kwargs["unit"] == "epoch"
        shown[engine] = bar.postfixes
    assert len(shown["tape"]) == 3
    assert shown["tape"] == shown["values"]
