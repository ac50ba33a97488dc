"""Ctrl-C before the command line runs: importing torch takes a second or two, and an
interrupt there would print a traceback through the imports. When gankit is imported as
the command (``python -m gankit``, or the installed ``gankit`` script), SIGINT until
``gankit.cli.main`` starts prints one line and exits with status 130, as it does later.
Imported as a library, gankit leaves signals alone."""

from __future__ import annotations

import os
import signal
import sys
import threading

__all__ = ["COMMAND_LINE", "interrupted_while_starting"]


def interrupted_while_starting(signum, frame) -> None:
    sys.stderr.write("gankit: interrupted\n")
    sys.stderr.flush()
    os._exit(130)  # (nothing is written yet: no clean-up to run)


# ``python -m gankit`` sets argv[0] to "-m" while it imports the package; the installed
# script is argv[0] itself
COMMAND_LINE = sys.argv[:1] == ["-m"] or os.path.basename(sys.argv[0] if sys.argv else "") \
    == "gankit"
if COMMAND_LINE and threading.current_thread() is threading.main_thread() \
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, interrupted_while_starting)
