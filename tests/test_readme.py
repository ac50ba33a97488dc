"""Every quick command of README.md works verbatim on a fresh checkout: the lines of its
```bash blocks are run in order, in a folder holding the repository's configs (lines
marked ``# takes minutes`` are checked by --help only)."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_readme_is_a_short_front_page():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250
    assert len(readme_commands()) >= 6


def test_readme_commands_run_verbatim(tmp_path):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for line in readme_commands():
        slow = line.endswith("# takes minutes")
        command = line.removesuffix("# takes minutes").strip()
        if command.startswith(("python3 -m venv", "pip ")):
            continue  # the set-up itself: CI has just done it
        if slow:  # at least the command and its flags exist
            words = shlex.split(command)
            if words[0] != "gankit":
                continue
            command = shlex.join(words[:2 if words[1] != "bench" else 3] + ["--help"])
        r = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, f"{command!r} failed:\n{r.stderr[-2000:]}"
