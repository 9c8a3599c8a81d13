"""One compiled version of a kernel per argument type, not per constant value.

When a jitted function calls another with a constant argument (``evaluate_cycle(..., 2, ...)``,
``get_amount0_delta(..., True)``), Numba types that argument as a literal (``Literal[int](2)``)
and compiles a separate version of the callee, and of everything it calls, for each value:
without this module the strategy kernel held four versions of ``evaluate_cycle`` (2 or 3 hops,
times a literal or a variable output position), two of the whole exact sizing search, and the
spinning loop's ``process_packed(..., True)`` a second copy of the entire batch kernel. Each
version is optimised and code-generated again with all of its callees linked in, so most of
the first install's warm-up went into these copies.

:func:`install` makes a call from one of this package's kernels to another try the callee with
plain types first (``int64``, ``bool``) and fall back to the literal types only when the plain
ones do not type (a callee that needs a compile-time constant). The constant still reaches
LLVM, which inlines small callees and folds it there. Installed when :mod:`alphapulse.jit` is
imported, so the warm-up and any later compile produce the same versions (the on-disk cache
holds what the processes look up).
"""
from __future__ import annotations

from numba.core import errors, types
from numba.core.types.functions import Dispatcher

PACKAGE = "alphapulse."
_installed = False


def _ours(dispatcher) -> bool:
    return getattr(dispatcher.py_func, "__module__", "").startswith(PACKAGE)


def install() -> None:
    """Patch :meth:`numba.core.types.Dispatcher.get_call_type` (once per process)."""
    global _installed
    if _installed:
        return
    plain_first = Dispatcher.get_call_type

    def get_call_type(self, context, args, kws):
        if (any(isinstance(a, types.Literal) for a in args)
                or any(isinstance(v, types.Literal) for v in kws.values())) and _ours(self.dispatcher):
            plain = tuple(types.unliteral(a) for a in args)
            plain_kws = {k: types.unliteral(v) for k, v in kws.items()}
            try:
                sig = plain_first(self, context, plain, plain_kws)
            except errors.TypingError:
                sig = None
            if sig is not None:
                return sig
        return plain_first(self, context, args, kws)

    Dispatcher.get_call_type = get_call_type
    _installed = True
