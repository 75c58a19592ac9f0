"""WASI modules written in WAT for the WASM tool tests.

Each module is a WASI preview 1 command. Memory layout shared by all of them:
bytes 0-31 hold an iovec and result slots, static strings start at 64, and
input is read into a buffer at 1024.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dragonscale_lc.tools.wasm import WasmTool

IMPORTS = """
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
"""

# Memory and a $write helper. Modules that import more put this after their imports.
PRELUDE = """
  (memory (export "memory") 1)
  ;; Write length bytes at address to a file descriptor.
  (func $write (param $fd i32) (param $address i32) (param $length i32)
    (i32.store (i32.const 0) (local.get $address))
    (i32.store (i32.const 4) (local.get $length))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
"""

# Reads all of stdin and writes {"echo": <stdin>}.
ECHO = f"""
(module {IMPORTS} {PRELUDE}
  (data (i32.const 64) "{{\\"echo\\": ")
  (data (i32.const 80) "}}")
  (func (export "_start") (local $end i32)
    (local.set $end (i32.const 1024))
    (block $eof
      (loop $read
        (i32.store (i32.const 0) (local.get $end))
        (i32.store (i32.const 4) (i32.sub (i32.const 65536) (local.get $end)))
        (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (br_if $eof (i32.eqz (i32.load (i32.const 8))))
        (local.set $end (i32.add (local.get $end) (i32.load (i32.const 8))))
        (br $read)))
    (call $write (i32.const 1) (i32.const 64) (i32.const 9))
    (call $write (i32.const 1) (i32.const 1024) (i32.sub (local.get $end) (i32.const 1024)))
    (call $write (i32.const 1) (i32.const 80) (i32.const 1))))
"""

LOOP = f"""
(module {IMPORTS} {PRELUDE}
  (func (export "_start") (loop $forever (br $forever))))
"""

# Grows memory one page at a time until memory.grow fails, then reports and
# aborts the way a Rust program does when an allocation fails.
MEMORY_BOMB = f"""
(module {IMPORTS} {PRELUDE}
  (data (i32.const 64) "memory allocation failed")
  (func (export "_start")
    (loop $grow
      (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (call $write (i32.const 2) (i32.const 64) (i32.const 24))
    unreachable))
"""

# Opens secret.txt relative to fd 3, the first preopened directory when there
# is one, and exits with code 2 when path_open fails with EBADF (8).
OPEN_FILE = f"""
(module {IMPORTS}
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  {PRELUDE}
  (data (i32.const 64) "secret.txt")
  (data (i32.const 96) "path_open failed: EBADF")
  (data (i32.const 128) "path_open failed: other errno")
  (func (export "_start")
    (if (i32.eq (i32.const 8)
          (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 10)
                           (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0)
                           (i32.const 16)))
      (then (call $write (i32.const 2) (i32.const 96) (i32.const 23)))
      (else (call $write (i32.const 2) (i32.const 128) (i32.const 29))))
    (call $proc_exit (i32.const 2))))
"""

INVALID_JSON = f"""
(module {IMPORTS} {PRELUDE}
  (data (i32.const 64) "{{\\"answer\\": 42")
  (func (export "_start") (call $write (i32.const 1) (i32.const 64) (i32.const 13))))
"""

TRAP = f"""
(module {IMPORTS} {PRELUDE}
  (func (export "_start") unreachable))
"""

EXIT_3 = f"""
(module {IMPORTS} {PRELUDE}
  (data (i32.const 64) "bad input: expected a number")
  (func (export "_start")
    (call $write (i32.const 2) (i32.const 64) (i32.const 28))
    (call $proc_exit (i32.const 3))))
"""

# Writes "[1,1,1,1,1,1,1,1" 100 times and ignores failed writes.
CHATTY = f"""
(module {IMPORTS} {PRELUDE}
  (data (i32.const 64) "[1,1,1,1,1,1,1,1")
  (func (export "_start") (local $count i32)
    (loop $again
      (call $write (i32.const 1) (i32.const 64) (i32.const 16))
      (local.set $count (i32.add (local.get $count) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $count) (i32.const 100))))))
"""

# Writes [argc, environment variable count], each a single digit.
COUNT_ARGS = f"""
(module {IMPORTS}
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  {PRELUDE}
  (data (i32.const 64) "[0,0]")
  (func (export "_start")
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $environ_sizes_get (i32.const 24) (i32.const 28)))
    (i32.store8 (i32.const 65) (i32.add (i32.const 48) (i32.load (i32.const 16))))
    (i32.store8 (i32.const 67) (i32.add (i32.const 48) (i32.load (i32.const 24))))
    (call $write (i32.const 1) (i32.const 64) (i32.const 5))))
"""

TEXT_SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string", "description": "Any text."}},
    "required": ["text"],
}
NO_ARGUMENTS = {"type": "object", "properties": {}}

# Small limits keep the failing tests fast.
SMALL_LIMITS: dict[str, Any] = {
    "fuel": 100_000,
    "timeout": 5.0,
    "memory_limit": 4 * 65536,
    "max_output": 64,
}

MakeTool = Callable[..., WasmTool]
