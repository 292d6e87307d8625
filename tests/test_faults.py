"""Faults (issue 6): interrupting ``fit``, failing saves, and a loss that turns non-finite.

- **Interrupts.** ``fit`` interrupted by ``KeyboardInterrupt`` leaves every parameter array
  (and the optimizer's state) from the same step: bit for bit those of a run that stopped
  cleanly after that step. Raised synchronously by the optimizer or the loss (also in the
  middle of the numerical gradient, while a parameter is perturbed in place), the step in
  progress is dropped whole. A real Ctrl-C (SIGINT) is held until the step in progress is
  over, so it never lands between the updates of two arrays; a second one interrupts at once.
- **Saves.** A save that fails at any point (while numpy writes, at fsync, at chmod, at the
  rename; with ``OSError`` or ``KeyboardInterrupt``) leaves the previous file bit-identical and
  no temporary file behind; a process killed in the middle of a save leaves the previous file
  intact (only a hidden ``.minifw-*.tmp`` beside it, which the next save into the folder removes).
- **Non-finite losses.** A loss, gradient, step or validation loss that turns NaN or infinite
  stops training with ``FloatingPointError`` naming the epoch and batch (or epoch); the
  parameters keep their last finite values: those of a clean run of the steps before.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as onp
import pytest

import minifw as mf
from minifw import files
from minifw.training import minibatches
from minifw.tree import leaves


def _data(n=8, seed=0):
    rng = onp.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    return x, (x[:, 0] + x[:, 1] > 0).astype(onp.int64)


MODEL = mf.Sequential(mf.Linear(3, 4), mf.Tanh(), mf.Linear(4, 2))
N, BATCH = 8, 2  # four steps an epoch


def _start():
    return MODEL.init(onp.random.default_rng(1))


def _bytes(tree):
    return {k: (a.dtype.str, a.shape, a.tobytes()) for k, a in leaves(tree)}


def _state(opt):
    return (opt.iterations, {p: {k: onp.asarray(v).tobytes() for k, v in s.items()}
                             for p, s in opt.state.items()})


def clean_steps(steps, loss=None, gradient="autograd", make_opt=lambda: mf.optim.Adam(0.01),
                f=None):
    """Parameters and optimizer after exactly ``steps`` steps, by the loop fit documents:
    shuffle with the same generator, batch, ``opt.step`` (value_and_grad, then update).
    ``f``: the objective (default: ``loss(MODEL(p, x), t)``, which fit makes)."""
    x, t = _data()
    params, opt = _start(), make_opt()
    loss = loss or mf.SoftmaxCrossEntropy()
    f = f or (lambda p, x, t: loss(MODEL(p, x), t))
    rng = onp.random.default_rng(7)
    done = 0
    while done < steps:
        for idx in minibatches(N, BATCH, rng):
            if done == steps:
                break
            opt.step(f, params, x[idx], t[idx], method=gradient)
            done += 1
    return params, opt


def run_fit(opt, loss=None, gradient="autograd", epochs=3, **kw):
    x, t = _data()
    params = _start()
    try:
        history = mf.fit(MODEL, loss or mf.SoftmaxCrossEntropy(), opt, params, x, t,
                         epochs=epochs, batch_size=BATCH, rng=onp.random.default_rng(7),
                         gradient=gradient, progress=False, **kw)
        error = None
    except (KeyboardInterrupt, FloatingPointError) as e:
        history, error = None, e
    return params, history, error


@pytest.mark.parametrize("make_opt", [lambda: mf.optim.Adam(0.01), lambda: mf.optim.SGD(0.1)],
                         ids=["Adam", "SGD"])
def test_the_reference_loop_is_fits_loop(make_opt):
    params, _, error = run_fit(make_opt(), epochs=2)
    assert error is None
    want, _ = clean_steps(2 * N // BATCH, make_opt=make_opt)
    assert _bytes(params) == _bytes(want)


class InterruptingOptimizer(mf.optim.Adam):
    """Adam that raises KeyboardInterrupt as its ``at``-th update begins."""

    def __init__(self, at):
        super().__init__(0.01)
        self.at, self.calls = at, 0

    def update(self, params, grads):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        super().update(params, grads)


@pytest.mark.parametrize("at", [1, 2, 5, 8, 11])
def test_an_interrupt_from_the_optimizer_leaves_the_previous_step(at):
    opt = InterruptingOptimizer(at)
    params, _, error = run_fit(opt)
    assert isinstance(error, KeyboardInterrupt)
    want, want_opt = clean_steps(at - 1)
    assert _bytes(params) == _bytes(want)
    assert _state(opt) == _state(want_opt)


class InterruptingLoss(mf.Loss):
    """Softmax cross-entropy that raises KeyboardInterrupt on its ``at``-th call.

    ``chain=False`` multiplies it by 1.0 after the loss op: no longer a chain ending in a
    minifw loss, so the numerical gradient takes the per-element loop."""

    def __init__(self, at, chain=True):
        self.at, self.calls, self.chain = at, 0, chain

    def forward(self, y, t):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        value = mf.functions.softmax_cross_entropy(y, t)
        return value if self.chain else value * 1.0


@pytest.mark.parametrize("at", [1, 3, 6])
def test_an_interrupt_from_the_loss_leaves_the_previous_step(at):
    # a custom loss takes the generic autograd path: one loss call per step
    params, _, error = run_fit(mf.optim.Adam(0.01), loss=InterruptingLoss(at))
    assert isinstance(error, KeyboardInterrupt)
    want, _ = clean_steps(at - 1, loss=mf.SoftmaxCrossEntropy())
    for (k, a), (_, b) in zip(leaves(params), leaves(want)):
        onp.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15, err_msg=k)  # generic path
    want_generic = _generic_steps(at - 1)
    assert _bytes(params) == _bytes(want_generic)


def _generic_steps(steps, gradient="autograd"):
    """clean_steps with the loss of ``InterruptingLoss(chain=False)``, by the same road."""
    def f(p, xb, tb):
        return mf.functions.softmax_cross_entropy(MODEL(p, xb), tb) * 1.0

    return clean_steps(steps, gradient=gradient, f=f)[0]


@pytest.mark.parametrize("step, call", [(1, 1), (1, 6), (2, 30), (3, 54)])
def test_an_interrupt_inside_the_numerical_gradient_restores_the_perturbed_element(step, call):
    # numerical gradient by the loop: one call for the value, one traced (no chain), then the
    # parameters are perturbed in place, one element at a time, 2 calls each (26 elements):
    # 54 calls a step
    per_step = 2 + 2 * sum(a.size for _, a in leaves(_start()))
    assert per_step == 54
    at = (step - 1) * per_step + call
    params, _, error = run_fit(mf.optim.Adam(0.01), loss=InterruptingLoss(at, chain=False),
                               gradient="numerical")
    assert isinstance(error, KeyboardInterrupt)
    assert _bytes(params) == _bytes(_generic_steps(step - 1, gradient="numerical"))


class SignalingOptimizer(mf.optim.Adam):
    """Adam that sends itself SIGINT (``times`` of them) as its ``at``-th update begins."""

    def __init__(self, at, times=1):
        super().__init__(0.01)
        self.at, self.times, self.calls = at, times, 0

    def update(self, params, grads):
        self.calls += 1
        if self.calls == self.at:
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)
        super().update(params, grads)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX signals")
@pytest.mark.parametrize("at", [1, 4, 6])
def test_a_real_ctrl_c_waits_for_the_step_to_finish(at):
    opt = SignalingOptimizer(at)
    params, _, error = run_fit(opt)
    assert isinstance(error, KeyboardInterrupt)
    epoch, batch = divmod(at - 1, N // BATCH)
    assert f"after epoch {epoch + 1}, batch {batch + 1} of 4" in str(error)
    want, want_opt = clean_steps(at)  # the step in progress was completed, not torn
    assert _bytes(params) == _bytes(want) and _state(opt) == _state(want_opt)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert error.history.loss == [] if at <= 4 else len(error.history.loss) == 1


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX signals")
def test_a_second_ctrl_c_interrupts_at_once_and_still_tears_nothing():
    opt = SignalingOptimizer(3, times=2)
    params, _, error = run_fit(opt)
    assert isinstance(error, KeyboardInterrupt)
    # the second SIGINT raised inside update before any array was written: two steps stand
    want, _ = clean_steps(2)
    assert _bytes(params) == _bytes(want)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_fit_leaves_a_custom_sigint_handler_alone():
    seen = []
    old = signal.signal(signal.SIGINT, lambda s, f: seen.append(s))
    try:
        params, _, error = run_fit(SignalingOptimizer(2))
        assert error is None and seen == [signal.SIGINT]  # the user's handler got it
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, old)


# --- saves ------------------------------------------------------------------------------------


PARAMS = {"0": {"W": onp.arange(6.0).reshape(2, 3), "b": onp.zeros(3)}, "1": {}}


def _half_written(exc):
    def savez(fh, **arrays):
        fh.write(b"PK\x03\x04" + b"\x00" * 100)  # the start of a zip, then the failure
        raise exc
    return savez


def _raises(exc):
    def fail(*args, **kwargs):
        raise exc
    return fail


FAILURES = {
    "savez OSError": ("onp.savez", lambda: _half_written(OSError(28, "No space left"))),
    "savez interrupt": ("onp.savez", lambda: _half_written(KeyboardInterrupt())),
    "fsync": ("os.fsync", lambda: _raises(OSError(5, "I/O error"))),
    "chmod": ("os.chmod", lambda: _raises(PermissionError(1, "not permitted"))),
    "replace": ("os.replace", lambda: _raises(OSError(18, "cross-device link"))),
    "replace interrupt": ("os.replace", lambda: _raises(KeyboardInterrupt())),
}


@pytest.mark.parametrize("existing", [True, False], ids=["overwrite", "new file"])
@pytest.mark.parametrize("where", list(FAILURES))
def test_a_failed_save_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch, where, existing):
    path = tmp_path / "params.npz"
    if existing:
        mf.save(path, PARAMS)
    before = path.read_bytes() if existing else None
    target, make = FAILURES[where]
    module, name = target.split(".")
    monkeypatch.setattr(getattr(files, module), name, make())
    with pytest.raises((OSError, KeyboardInterrupt)):
        mf.save(path, {"new": onp.ones(4)})
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["params.npz"] if existing else [])
    if existing:
        assert path.read_bytes() == before
        loaded = mf.load(path)
        assert list(loaded) == ["0", "1"] and loaded["1"] == {}


def test_a_save_killed_midway_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "params.npz"
    mf.save(path, PARAMS)
    before = path.read_bytes()
    script = textwrap.dedent(f"""
        import os, numpy as onp, minifw as mf
        from minifw import files

        def savez(fh, **arrays):
            fh.write(b"PK\\x03\\x04" + b"\\x00" * 1000)
            fh.flush()
            os._exit(9)  # killed: no finally, no cleanup

        files.onp.savez = savez
        mf.save({str(path)!r}, {{"new": onp.ones(1000)}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert path.read_bytes() == before
    assert list(mf.load(path)) == ["0", "1"]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "params.npz"]
    assert all(n.startswith(".minifw-") and n.endswith(".tmp") for n in leftovers)


# --- non-finite losses ------------------------------------------------------------------------


class TurnsNaN(mf.Loss):
    """Softmax cross-entropy that becomes ``bad`` from its ``at``-th call on."""

    def __init__(self, at, bad=onp.nan):
        self.at, self.bad, self.calls = at, bad, 0

    def forward(self, y, t):
        self.calls += 1
        value = mf.functions.softmax_cross_entropy(y, t)
        return value + self.bad if self.calls >= self.at else value


@pytest.mark.parametrize("bad", [onp.nan, onp.inf])
@pytest.mark.parametrize("at", [1, 4, 7])
def test_a_loss_turning_non_finite_names_epoch_and_batch_and_keeps_the_last_params(at, bad):
    params, _, error = run_fit(mf.optim.Adam(0.01), loss=TurnsNaN(at, bad))
    assert isinstance(error, FloatingPointError)
    epoch, batch = divmod(at - 1, N // BATCH)
    assert f"epoch {epoch + 1}, batch {batch + 1} of 4" in str(error)
    assert _bytes(params) == _bytes(_generic_steps(at - 1))
    assert len(error.history.loss) == epoch


class BlowsUp(mf.Loss):
    """A loss whose outputs overflow from the ``at``-th call on: y * 1e308 * 1e10."""

    def __init__(self, at):
        self.at, self.calls = at, 0

    def forward(self, y, t):
        self.calls += 1
        scale = 1e308 if self.calls >= self.at else 1.0
        with onp.errstate(over="ignore"):
            return mf.functions.softmax_cross_entropy(y * scale * 1e10 if scale > 1 else y, t)


def test_outputs_that_overflow_stop_training_naming_where():
    params, _, error = run_fit(mf.optim.Adam(0.01), loss=BlowsUp(3))
    assert isinstance(error, FloatingPointError)
    assert "epoch 1, batch 3 of 4" in str(error) and "y contains" in str(error)
    assert _bytes(params) == _bytes(_generic_steps(2))


def test_a_step_that_would_overflow_the_params_is_refused_and_names_where():
    x, t = _data()
    params = _start()
    before = _bytes(params)
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 1 of 4: .*overflows"):
        mf.fit(MODEL, mf.SumSquaresError(), mf.optim.SGD(lr=1e308), params, x,
               onp.eye(2)[t] * 1e5, epochs=1, batch_size=BATCH, rng=7, progress=False)
    assert _bytes(params) == before


def test_a_validation_loss_turning_non_finite_names_the_epoch():
    class ValidationBlowsUp(mf.Loss):
        def forward(self, y, t):
            value = mf.functions.softmax_cross_entropy(y, t)
            return value * onp.inf if len(onp.shape(t)) and onp.shape(t)[0] == 3 else value

    x, t = _data()
    params = _start()
    with pytest.raises(FloatingPointError, match=r"validation loss is inf after epoch 1") as e:
        mf.fit(MODEL, ValidationBlowsUp(), mf.optim.Adam(0.01), params, x, t, epochs=3,
               batch_size=BATCH, rng=7, validation=(x[:3], t[:3]), progress=False)
    assert all(onp.all(onp.isfinite(a)) for _, a in leaves(params))
    assert _bytes(params) == _bytes(_generic_steps(4))
    assert e.value.history.loss and e.value.history.val_loss == []


def test_a_non_finite_gradient_stops_with_the_params_unchanged():
    class SqrtAtZero(mf.Loss):  # finite value, gradient inf * 0 = NaN
        def forward(self, y, t):
            return mf.np.sqrt(mf.np.abs(mf.np.sum(y) - mf.np.sum(y))) + 1.0

    x, t = _data()
    params = _start()
    before = _bytes(params)
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 1 of 4"):
        with onp.errstate(all="ignore"):
            mf.fit(MODEL, SqrtAtZero(), mf.optim.SGD(), params, x, t, epochs=1,
                   batch_size=BATCH, rng=7, gradient="autograd", progress=False)
    assert _bytes(params) == before
