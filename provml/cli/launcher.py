"""The small process ``provml run`` starts its command through: ``python -I -S
launcher.py FD COMMAND …``.

Why: Linux keeps a process's peak resident size across ``exec``, so a command forked
straight from ``provml run`` (tens of MB of Python) would show at least that as its
peak memory. This launcher is a fresh interpreter without site-packages (a few MB); the
command, forked from it, starts from that. It writes to the pipe ``FD``, one line each:
``pid N`` once the command started, then ``done STATUS CPU_SECONDS MAX_RSS_KIB`` (the
wait status and the resource usage of the command's process tree from ``wait4``) or
``error CODE MESSAGE`` when the command could not be started. ``provml run`` forwards
signals to the command itself (the pid), so this process ignores them.

Only the standard library, and nothing imported from provml: it runs with ``-I -S``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys

FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
#: what Python changes at start-up and a command expects at its default
RESTORED = ("SIGPIPE", "SIGXFSZ", "SIGXFZ")


def say(fd: int, line: str) -> None:
    """One line to provml run; nothing if it is gone (killed: the command runs on)."""
    with contextlib.suppress(OSError):
        os.write(fd, line.encode())


def main(argv: list[str]) -> int:
    fd = int(argv[1])
    command = argv[2:]
    os.set_inheritable(fd, False)  # the command does not get the pipe
    ours = [getattr(signal, n) for n in FORWARDED if hasattr(signal, n)]
    for signum in ours:  # provml run sends them to the command itself
        signal.signal(signum, signal.SIG_IGN)
    pid = os.fork()
    if pid == 0:
        try:
            for name in (*FORWARDED, *RESTORED):
                if hasattr(signal, name):
                    signal.signal(getattr(signal, name), signal.SIG_DFL)
            os.execvp(command[0], command)
        except OSError as exc:
            code = 127 if exc.errno == errno.ENOENT else 126
            say(fd, f"error {code} {exc.strerror or exc}\n")
        except BaseException as exc:  # pragma: no cover - anything else: say it, exit
            say(fd, f"error 126 {exc!r}\n")
        os._exit(127)
    say(fd, f"pid {pid}\n")
    _, status, usage = os.wait4(pid, 0)
    cpu = usage.ru_utime + usage.ru_stime
    say(fd, f"done {status} {cpu:.6f} {usage.ru_maxrss}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
