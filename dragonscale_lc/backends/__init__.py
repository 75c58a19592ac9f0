"""Execution backends outside the runtime core: where tasks marked ``remote=True`` run.

:class:`DaskBackend` sends calls to a Dask distributed cluster and needs the
``dask`` extra: ``pip install 'dragonscale_lc[dask]'``. It is imported on
first use, so importing this package does not load Dask.

Example:
    >>> from dragonscale_lc.backends import dask_priority
    >>> dask_priority(2, 3.0)
    2.75
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes as _lazy_attributes

if TYPE_CHECKING:
    from .dask import DaskBackend, dask_priority

__getattr__, __dir__ = _lazy_attributes(globals(), {"DaskBackend": "dask", "dask_priority": "dask"})

__all__ = ["DaskBackend", "dask_priority"]
