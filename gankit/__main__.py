import os
import sys

from gankit.cli import main

code = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # A torchrun rank leaves without the interpreter's teardown: gloo's worker threads can
    # abort the process there ("terminate called without an active exception") after the
    # run has finished and every file is written and closed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
