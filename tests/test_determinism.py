"""Determinism (issue 6): the same seed gives bit-identical results, run to run.

Parameters, histories, gradient-check reports, the perceptron, gradient descent and the
digits split are compared bit for bit: twice in this process, and against fresh Python
processes started with different hash seeds (so nothing may depend on ``hash()``, dict order
from sets, or state left over in a process). The CI hypothesis profile is deterministic too, and
so are the counts of the fuzzing table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]

#: One script, run here (exec) and in subprocesses: it prints one digest per result.
SCRIPT = textwrap.dedent('''
    import hashlib, json
    import numpy as onp
    import minifw as mf
    from minifw.datasets import load_digits
    from minifw.tree import leaves

    def digest(*parts):
        h = hashlib.sha256()
        for p in parts:
            h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=True).encode())
        return h.hexdigest()

    def params_digest(params):
        return digest(*[k.encode() + a.dtype.str.encode() + a.tobytes()
                        for k, a in leaves(params)])

    out = {}
    (x, t), (xv, tv) = load_digits(seed=3)
    out["digits split"] = digest(x.tobytes(), t.tobytes(), xv.tobytes(), tv.tobytes())
    x, t, xv, tv = x[:120], t[:120], xv[:40], tv[:40]
    for gradient, opt in (("autograd", "adam"), ("autograd", "momentum"),
                          ("numerical", "sgd")):
        model = mf.Sequential(mf.Linear(64, 8), mf.ReLU(), mf.Linear(8, 10))
        rng = onp.random.default_rng(11)
        params = model.init(rng)
        n = 40 if gradient == "numerical" else 120
        history = mf.fit(model, mf.SoftmaxCrossEntropy(),
                         mf.optim.OPTIMIZERS[opt](lr=0.05), params, x[:n], t[:n],
                         epochs=2, batch_size=16, rng=rng, gradient=gradient,
                         validation=(xv, tv), progress=False)
        out[f"fit {gradient} {opt}"] = digest(params_digest(params).encode(),
                                              history.to_dict())
    small = mf.Sequential(mf.Linear(3, 4), mf.Tanh(), mf.Linear(4, 2))
    p = small.init(onp.random.default_rng(5))
    xs = onp.random.default_rng(6).standard_normal((4, 3))
    f = lambda q, x: mf.SoftmaxCrossEntropy()(small(q, x), onp.array([0, 1, 1, 0]))
    for mode in ("full", "projection"):
        report = mf.check_grads(f, p, xs, mode=mode, rng=9)
        out[f"check_grads {mode}"] = digest(str(report), repr(report.rows))
        layer_report = mf.check_layer(small, xs, mode=mode, rng=9)
        out[f"check_layer {mode}"] = digest(str(layer_report), repr(layer_report.rows))
    perceptron = mf.Perceptron(2, epochs=20).fit([[0, 0], [1, 0], [0, 1], [1, 1]], [0, 1, 1, 1])
    out["perceptron"] = digest(perceptron.w.tobytes(), perceptron.b, perceptron.errors_)
    end, path = mf.numerical.gradient_descent(lambda v: (v ** 2).sum() + v[0] * v[1],
                                              [-3.0, 4.0], lr=0.1, step_num=50,
                                              return_path=True)
    out["gradient descent"] = digest(end.tobytes(), path.tobytes())
    print(json.dumps(out, sort_keys=True))
''')


def in_process() -> dict[str, str]:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(SCRIPT, "<determinism>", "exec"), {"__name__": "determinism"})
    return json.loads(buf.getvalue())


def in_subprocess(hash_seed: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def first() -> dict[str, str]:
    return in_process()


def test_the_same_seed_gives_the_same_bits_twice_in_one_process(first):
    assert in_process() == first
    assert len(first) == 10


@pytest.mark.parametrize("hash_seed", ["0", "12345"])
def test_fresh_processes_give_the_same_bits(first, hash_seed):
    assert in_subprocess(hash_seed) == first


def test_different_seeds_give_different_training():
    # the digests are of something: another seed changes them
    changed = SCRIPT.replace("default_rng(11)", "default_rng(12)")
    buf = {}
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(changed, "<determinism>", "exec"), buf)
    other = json.loads(out.getvalue())
    base = in_process()
    assert other["fit autograd adam"] != base["fit autograd adam"]
    assert other["perceptron"] == base["perceptron"]


def test_the_ci_hypothesis_profile_is_deterministic():
    ci = settings.get_profile("ci")
    assert ci.derandomize is True and ci.database is None
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci":
        assert settings().derandomize and settings().database is None


def _fuzz_counts(module: str, folder: Path) -> list[dict]:
    record = folder / "record.json"
    env = {**os.environ, "HYPOTHESIS_PROFILE": "ci", "MINIFW_FUZZ_RECORD": str(record)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", f"tests/fuzz/{module}", "-q", "-p",
         "no:cacheprovider", "-o", "addopts="],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:]
    return json.loads(record.read_text())["counts"]


def test_the_fuzz_table_counts_are_reproducible(tmp_path):
    first = _fuzz_counts("test_fuzz_perceptron.py", tmp_path)
    assert first and _fuzz_counts("test_fuzz_perceptron.py", tmp_path) == first
    assert sum(r["examples"] for r in first) > 100
