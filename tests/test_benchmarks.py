"""The benchmark suite runs (a smoke run, in seconds) and its baselines compute minifw's numbers.

A benchmark is only as honest as its peers: the hand-written NumPy network, the per-element
loop and the PyTorch peers must compute the same values as minifw, or the ratios compare
different work.
"""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as onp
import pytest

import minifw as mf
from minifw.tree import leaves

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    """The benchmark modules (``run`` and ``baselines``), imported from benchmarks/."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("run"), importlib.import_module("baselines")


def test_the_smoke_run_writes_results_and_the_plot(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--smoke", "--no-torch", "--out",
         str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "RESULTS.md").read_text()
    for figure in ("training step", "user's layer", "float32", "deep thin",
                   "minifw / PyTorch eager", "tiny network", "full numerical gradient",
                   "sigmoid", "check_grads projection", "check_grads full",
                   "check_layer full mode", "Conv2D forward + backward", "per-position loop",
                   "digits CNN", "numerical gradient of a small CNN", "import minifw",
                   "Adam.update", "SGD.update", "fit with Adam", "as a Layer in minifw.np",
                   "as an mf.primitive", "mf.save / numpy.savez + fsync",
                   "mf.load / numpy.load"):
        assert figure in text, figure
    assert text.count("| skipped |") == 5  # the PyTorch peers: three, and conv2d in 2 dtypes
    assert "the digits CNN's test accuracy" in text
    assert "not used (--no-torch)" in text and "Smoke run" in text
    assert "rounding bound" in text and "load average" in text
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "checker_scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_import_figure_reads_the_cumulative_times_of_importtime(bench):
    startup = importlib.import_module("startup")
    text = ("import time: self [us] | cumulative | imported package\n"
            "import time:       5 |       900 |       numpy\n"
            "import time:       3 |      1000 |     autograd\n"
            "import time:       2 |      1500 | minifw\n")
    assert startup._cumulative(text) == {"numpy": 0.0009, "autograd": 0.001, "minifw": 0.0015}


def test_the_file_peers_write_and_read_the_arrays_minifw_does(bench, tmp_path):
    files = importlib.import_module("files")
    params = files.parameter_tree(3, 4, onp.random.default_rng(0))
    arrays = dict(leaves(params))
    assert list(arrays) == ["0.W", "0.b", "1.W", "1.b"] and arrays["1.W"].shape == (4, 3)
    ours, theirs = str(tmp_path / "minifw.npz"), str(tmp_path / "numpy.npz")
    files._agree(params, arrays, ours, theirs)  # each reads the other's file as the same arrays
    assert files.numpy_load(theirs).keys() == arrays.keys()
    arrays["1.b"] = arrays["1.b"] + 1.0
    with pytest.raises(AssertionError, match="the same arrays"):
        files._agree(params, arrays, ours, theirs)


def test_the_thread_count_given_to_pytorch_is_numpys(bench, monkeypatch):
    run, _ = bench
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # as where it is not installed
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert run.threads() == 1
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert run.threads() == (os.cpu_count() or 1)


def test_figures_judge_their_goals(bench):
    run, _ = bench
    faster = run.Figure("x", "<= 1.15", "minifw", "peer", minifw_s=1.0, peer_s=1.0)
    assert faster.ratio == 1.0 and faster.passed
    speedup = run.Figure("x", ">= 50", "minifw", "loop", minifw_s=1.0, peer_s=49.0)
    assert speedup.ratio == 49.0 and speedup.passed is False
    assert run.Figure("x", "<= 2.0", "minifw", "peer", minifw_s=1.0).passed is None


def test_interleaved_times_every_contender(bench):
    run, _ = bench
    calls = []
    times = run.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                            rounds=2, calls=3, warmup=1)
    assert [len(times["a"]), len(times["b"])] == [6, 6]
    assert calls[:4] == ["a"] * 4 and calls[4:12] == ["b"] * 8  # round 2 runs b first


def network(rng, inputs=12, hidden=5, outputs=4, batch=6):
    model = mf.Sequential(mf.Linear(inputs, hidden), mf.ReLU(), mf.Linear(hidden, outputs))
    params = model.init(rng)
    return (params, lambda p, x, t: mf.SoftmaxCrossEntropy()(model(p, x), t),
            rng.random((batch, inputs)), rng.integers(0, outputs, batch))


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adagrad", "rmsprop", "adam"])
def test_the_hand_written_rules_make_minifws_steps(bench, kind):
    _, baselines = bench
    optimizers = importlib.import_module("optimizers")
    rng = onp.random.default_rng(0)
    params = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    arrays = [params["w"].copy(), params["b"].copy()]
    opt, hand = optimizers.KINDS[kind](lr=0.001), baselines.HandRule(kind)
    start = [params["w"].copy(), params["b"].copy()]
    for _ in range(3):
        # g >= 0.5: Adam's sqrt(v) stays above 0.5 sqrt(1 - 0.999) = 0.016 (below), and the
        # steps of an element have one sign, so their sum keeps their relative error
        grads = {k: rng.uniform(0.5, 2, a.shape) for k, a in params.items()}
        opt.update(params, grads)
        hand.update(arrays, [grads["w"], grads["b"]])
    # the same steps, but for rounding; the book's Adam adds eps to sqrt(v) instead of
    # sqrt(1 - b2^t) eps: a relative difference below eps / sqrt(v) < 1e-8 / 0.016 in a step
    rtol = 1e-6 if kind == "adam" else 1e-12
    for a, p, s in zip(arrays, (params["w"], params["b"]), start):
        onp.testing.assert_allclose(a - s, p - s, rtol=rtol)


def test_the_hand_loop_trains_the_digits_as_fit_does(bench):
    fitting = importlib.import_module("fitting")
    (x, t), _ = fitting.load_digits()
    model = mf.Sequential(mf.Linear(64, fitting.HIDDEN), mf.ReLU(), mf.Linear(fitting.HIDDEN, 10))
    params = model.init(onp.random.default_rng(0))
    hand = fitting.hand_fit(params, x, t, onp.random.default_rng(1))
    ours = mf.fit(model, mf.SoftmaxCrossEntropy(), mf.optim.Adam(lr=0.001), params, x, t,
                  epochs=fitting.EPOCHS, batch_size=fitting.BATCH,
                  rng=onp.random.default_rng(1), progress=False).accuracy
    assert len(hand) == len(ours) == fitting.EPOCHS
    assert hand[-1] > 0.95 and abs(hand[-1] - ours[-1]) < 0.02  # the same work, learnt alike


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_the_hand_written_network_computes_minifws_gradient(bench, activation):
    _, baselines = bench
    rng = onp.random.default_rng(0)
    params, f, x, t = network(rng)
    if activation == "sigmoid":
        sigmoid_net = mf.Sequential(mf.Linear(12, 5), mf.Sigmoid(), mf.Linear(5, 4))

        def f(p, x, t):
            return mf.SoftmaxCrossEntropy()(sigmoid_net(p, x), t)
    hand = baselines.HandNet(params, activation)
    value, grads = mf.value_and_grad(f)(params, x, t)
    loss, hand_grads = hand.gradient(x, t)
    assert loss == pytest.approx(float(value), rel=1e-13)
    assert hand.loss(x, t) == pytest.approx(float(value), rel=1e-13)
    mine = [grads["0"]["W"], grads["0"]["b"], grads["2"]["W"], grads["2"]["b"]]
    for a, b in zip(mine, hand_grads):
        onp.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-15)


def test_the_loop_baseline_computes_minifws_central_differences(bench):
    _, baselines = bench
    rng = onp.random.default_rng(1)
    params, f, x, t = network(rng)
    hand = baselines.HandNet(params)
    h = 6.06e-6
    loop = baselines.loop_numerical_gradient(lambda: hand.loss(x, t), hand.arrays(), h)
    fast = mf.grad(f, method="numerical", h=h)(params, x, t)
    mine = [fast["0"]["W"], fast["0"]["b"], fast["2"]["W"], fast["2"]["b"]]
    bound = 64 * onp.finfo(float).eps * max(1.0, abs(float(f(params, x, t)))) / h
    assert len(loop) == sum(a.size for a in mine)
    for (n, idx), value in loop.items():
        assert abs(mine[n][idx] - value) <= bound
    before = [a.copy() for a in hand.arrays()]
    baselines.loop_numerical_gradient(lambda: hand.loss(x, t), hand.arrays(), h, [(0, (1, 2))])
    assert all(onp.array_equal(a, b) for a, b in zip(before, hand.arrays()))


def test_the_pytorch_peers_compute_minifws_gradient(bench):
    _, baselines = bench
    torch = pytest.importorskip("torch")
    rng = onp.random.default_rng(2)
    params, f, x, t = network(rng)
    loss, grads = baselines.torch_gradient(torch, params)(torch.from_numpy(x),
                                                          torch.from_numpy(t))
    value, mine = mf.value_and_grad(f)(params, x, t)
    assert loss.item() == pytest.approx(float(value), rel=1e-13)
    for a, b in zip([mine[k][n] for k in ("0", "2") for n in "Wb"], grads):
        onp.testing.assert_allclose(a, b.numpy(), rtol=1e-11, atol=1e-15)
    net = baselines.TorchNet(torch, params, lr=0.1)
    step_loss = net.step(torch.from_numpy(x), torch.from_numpy(t))
    assert step_loss.item() == pytest.approx(float(value), rel=1e-13)
    onp.testing.assert_allclose(net.model[0].weight.detach().numpy().T,
                                params["0"]["W"] - 0.1 * mine["0"]["W"], rtol=1e-12)


def test_without_pytorch_its_figures_are_skipped_with_a_note(bench, monkeypatch):
    _, baselines = bench
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    torch, why = baselines.torch_available()
    assert torch is None and "not importable" in why


POINTS = [{"params": n, "loop": n * 1e-4, "numerical": n * 1e-6, "full": n * 1.1e-6,
           "projection": 1e-3} for n in (1600, 3985, 7960, 19885, 39760, 79510)]

CHECKED = [{"batch": b, "n": n, "params": n * n + n, "built-in": 1.0, "Layer": 1.5,
            "primitive": 1.5, "torch": 2.0} for b, n in ((8, 16), (64, 128))]


def test_the_checker_figures_compare_each_form_with_the_built_in_and_torch(bench):
    checker = importlib.import_module("checker")
    figures = checker.figures(CHECKED, "no torch here")
    assert [f.ratio for f in figures] == [1.5, 1.5, 1.5, 1.5, 0.75]  # torch beyond 32x64 only
    assert all(f.passed for f in figures)
    without = checker.figures([{k: v for k, v in CHECKED[1].items() if k != "torch"}], "why")
    assert without[-1].passed is None and without[-1].note == "skipped: why"


def test_the_user_layers_of_the_checker_figure_compute_tanh_affine_and_pass_the_checker(bench):
    checker = importlib.import_module("checker")
    rng = onp.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    layer = checker.PrimitiveTanh(4)
    params = layer.init(rng)
    want = onp.tanh(x @ params["W"] + params["b"])
    assert onp.allclose(checker.UserTanh(4)(params, x), want)
    assert onp.allclose(layer(params, x), want)
    assert mf.check_layer(layer, x, params=params).ok


def fake_run(run, monkeypatch, missed: bool) -> None:
    """Make every stage of ``run.main`` instant: one figure, which passes unless ``missed``."""
    figure = run.Figure("a figure", "<= 5", "minifw", "peer", minifw_s=33.3 if missed else 1.0,
                        peer_s=1.0)
    monkeypatch.setattr(run, "train_steps", lambda mode, rng, torch: [figure])
    monkeypatch.setattr(run, "tiny_gradient", lambda mode, rng, torch: figure)
    monkeypatch.setattr(run, "numerical_gradients", lambda mode, rng: ([figure], "a bound"))
    monkeypatch.setattr(run, "check_grads_figures", lambda mode, rng: [figure])
    monkeypatch.setattr(run, "check_layer_figure", lambda mode, rng, torch: figure)
    monkeypatch.setattr(run, "scaling", lambda mode, rng: POINTS)
    import conv  # benchmarks/conv.py, beside run.py: the convolution stages

    monkeypatch.setattr(conv, "conv_figures", lambda mode, rng, torch, note: [figure])
    monkeypatch.setattr(conv, "digits_cnn_figure", lambda mode: (figure, "a note"))
    monkeypatch.setattr(conv, "cnn_numerical_figure", lambda mode, rng: (figure, "a bound"))
    import startup  # benchmarks/startup.py: the import figure

    monkeypatch.setattr(startup, "import_figure", lambda mode: figure)
    import files  # benchmarks/files.py: save and load against NumPy's

    monkeypatch.setattr(files, "file_figures", lambda mode, rng: [figure])
    import optimizers  # benchmarks/optimizers.py: the optimizers' updates

    monkeypatch.setattr(optimizers, "update_figures", lambda mode, rng: [figure])
    import fitting  # benchmarks/fitting.py: fit against the loop by hand

    monkeypatch.setattr(fitting, "fit_figure", lambda mode: figure)
    import checker  # benchmarks/checker.py: the checker on a user's layer, by size

    monkeypatch.setattr(checker, "points", lambda mode, rng, torch: CHECKED)


@pytest.mark.parametrize("missed, status", [(False, 0), (True, 1)])
def test_a_quick_run_leaves_the_committed_results_and_a_missed_goal_exits_1(
        bench, monkeypatch, capsys, missed, status):
    run, _ = bench
    fake_run(run, monkeypatch, missed)
    committed = {name: (run.HERE / name).read_bytes() for name in ("RESULTS.md", "scaling.png")}
    assert run.main(["--quick", "--no-torch"]) == status
    out = capsys.readouterr().out
    assert "not written" in out and ("33.3  <= 5     FAIL" in out) == missed
    assert {name: (run.HERE / name).read_bytes() for name in committed} == committed


def test_a_quick_run_writes_where_it_is_told_and_never_over_the_committed_results(
        bench, monkeypatch, tmp_path, capsys):
    run, _ = bench
    fake_run(run, monkeypatch, missed=False)
    assert run.main(["--quick", "--no-torch", "--out", str(tmp_path)]) == 0
    assert "Quick run" in (tmp_path / "RESULTS.md").read_text()
    assert (tmp_path / "scaling.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit):
        run.main(["--quick", "--write"])
    assert "only a full run may" in capsys.readouterr().err


def test_the_scaling_axes_label_every_network_size(bench):
    run, _ = bench
    fig = run.scaling_figure(POINTS)
    fig.canvas.draw()
    for ax in fig.axes:
        labels = [label.get_text() for label in ax.get_xticklabels() if label.get_visible()]
        assert labels == ["1.6k", "3.98k", "7.96k", "19.9k", "39.8k", "79.5k"]
