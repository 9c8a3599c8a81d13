"""Call a compiled kernel without its dispatcher.

A Numba dispatcher types every argument on every call to pick the compiled
version: about 0.3 us plus ~40 ns per array argument here, which is most of
the cost of a small kernel called once per frame (a ring poll, a release) and
a good part of a large one's (the strategy's ~35 arguments). Call sites whose
argument types never change (their own arrays) bind the compiled entry point
once and call it directly.
"""
from __future__ import annotations

from typing import Callable


def compiled_entry(dispatcher, *args) -> Callable:
    """The compiled entry point of ``dispatcher`` for the types of ``args``.

    Compiled (or loaded from the cache) now, not run. Only for arguments whose
    types stay those of ``args``: the entry point does not re-check them. When no
    version can be compiled for them the dispatcher itself is returned.
    """
    sig = tuple(dispatcher.typeof_pyval(a) for a in args)
    cres = dispatcher.overloads.get(sig)
    if cres is None:
        try:
            dispatcher.compile(sig)
        except Exception:  # noqa: BLE001 - the dispatcher will raise the typing error itself
            return dispatcher
        cres = dispatcher.overloads.get(sig)
    return cres.entry_point if cres is not None else dispatcher
