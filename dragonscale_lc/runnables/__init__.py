"""LangChain Runnables built on the Dragonscale runtime.

:class:`DagRunnable` runs a dict of Runnables with declared dependencies as
one task graph, starting each node as soon as its own dependencies finish.
"""

from .._errors import DagRunError
from ._call import CUSTOM_EVENT_PREFIX
from ._dag import DagRunnable
from ._node import DagNode

__all__ = ["CUSTOM_EVENT_PREFIX", "DagNode", "DagRunError", "DagRunnable"]
