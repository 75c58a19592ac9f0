"""Test doubles for running the compiler without a network or an API key.

:class:`ScriptedChatModel` is a LangChain chat model whose replies come from a
script: fixed strings, or functions that write a reply from the prompt. It
streams each reply in small chunks, like a real model's tokens, so a plan's
tasks start while the rest of the plan is still arriving.
"""

from ._scripted import Reply, ScriptedChatModel

__all__ = ["Reply", "ScriptedChatModel"]
