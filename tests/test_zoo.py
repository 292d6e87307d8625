"""minifw's checker against the zoo (tests/zoo.py): every correct layer passes and every wrong
one fails, in both modes and both precisions, kinks and ties included (goal: 0 and 0)."""

import numpy as onp
import pytest
from zoo import cases, scalar

import minifw as mf

CASES = {case.name: case for case in cases()}


def test_the_zoo_is_large_and_mixed():
    correct = sum(case.correct for case in CASES.values())
    assert len(CASES) == len(cases()) and 2 * len(CASES) >= 100  # names are unique
    assert correct >= 30 and len(CASES) - correct >= 30


@pytest.mark.parametrize("dtype", [onp.float64, onp.float32])
@pytest.mark.parametrize("mode", mf.gradcheck.MODES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_verdict_matches_the_truth(name, mode, dtype):
    case = CASES[name]
    f, tree = scalar(case, dtype)
    report = mf.check_grads(f, tree, mode=mode, rng=0)
    assert report.ok is case.correct, str(report)
    if not case.correct:  # a failure says where and why
        assert any(not row.ok and row.verdict for row in report.rows), str(report)
