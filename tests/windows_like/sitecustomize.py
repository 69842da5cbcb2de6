"""Run dmtool on POSIX as if on Windows, as far as the standard library lets
us: a folder for PYTHONPATH (tests/test_locks.py), so that every process the
command starts (the demo runs each step in a new one) starts the same way.

The modules Windows has not are not importable; the functions and constants
it lacks are gone from os, time and signal before dmtool is imported; and a
stand-in msvcrt (msvcrt.py beside this file) locks like Windows does. os.name
stays "posix": the standard library still runs its POSIX code, so only what
it does not need on the way is removed here. For the same reason the
stand-in msvcrt is there only for dmtool's own imports: the standard library
takes an importable msvcrt for Windows (subprocess would want _winapi)."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import signal
import sys
import time
from types import ModuleType
from typing import Any

import msvcrt_standin  # takes the real fcntl before it is blocked

MISSING_MODULES = ("fcntl", "pwd", "grp", "termios", "tty", "pty", "resource")
MISSING = {
    os: ("pwrite", "pread", "pwritev", "preadv", "getuid", "geteuid", "getgid", "getegid",
         "fchmod", "fchown", "lchown", "chown", "O_NOFOLLOW", "fork", "forkpty", "sync",
         "killpg", "getpgid", "setsid", "statvfs", "fstatvfs", "getloadavg", "nice",
         "posix_fadvise", "posix_fallocate", "fdatasync"),
    time: ("tzset",),
    signal: ("SIGKILL", "SIGALRM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGCHLD",
             "alarm", "setitimer", "getitimer", "pthread_kill", "pthread_sigmask",
             "siginterrupt"),
}


def _importer() -> str:
    """The name of the module running the import statement."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(
            ("importlib", "_frozen_importlib")):
        frame = frame.f_back  # type: ignore[assignment]
    return "" if frame is None else str(frame.f_globals.get("__name__", ""))


class _Existing(importlib.abc.Loader):
    def __init__(self, module: ModuleType) -> None:
        self.module = module

    def create_module(self, spec: Any) -> ModuleType:
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        pass


class _NotOnWindows(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> Any:
        if name in MISSING_MODULES:
            raise ModuleNotFoundError(f"No module named {name!r} (not on Windows)", name=name)
        if name == "msvcrt" and _importer().startswith("dmtool"):
            return importlib.machinery.ModuleSpec("msvcrt", _Existing(msvcrt_standin))
        return None


for _name in MISSING_MODULES:
    sys.modules.pop(_name, None)
sys.meta_path.insert(0, _NotOnWindows())
for _module, _names in MISSING.items():
    for _attr in _names:
        if hasattr(_module, _attr):
            delattr(_module, _attr)
