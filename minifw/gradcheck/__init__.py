"""The gradient checker: the backward passes held against central differences and the trace.

One file per part: :mod:`~minifw.gradcheck.check` (``check_grads``: precision, tolerances,
rows), :mod:`~minifw.gradcheck.judge` (the step sweep that judges one element or direction,
kinks included), :mod:`~minifw.gradcheck.noise` (the measured rounding noise of ``f``),
:mod:`~minifw.gradcheck.reference` (autograd's trace of the forward passes, the second
reference), :mod:`~minifw.gradcheck.layer` (``check_layer``), :mod:`~minifw.gradcheck.blame`
(which call's backward pass is wrong), :mod:`~minifw.gradcheck.second` (second derivatives)
and :mod:`~minifw.gradcheck.report`.
"""

from minifw.gradcheck.check import MODES, assert_grads_close, check_grads, default_tolerances
from minifw.gradcheck.layer import COTANGENT, check_layer
from minifw.gradcheck.reference import TRACE_ROUNDING, Reference
from minifw.gradcheck.report import GradCheckReport, GradCheckRow

__all__ = ["check_grads", "check_layer", "assert_grads_close", "default_tolerances", "MODES",
           "GradCheckReport", "GradCheckRow", "Reference", "TRACE_ROUNDING", "COTANGENT"]
