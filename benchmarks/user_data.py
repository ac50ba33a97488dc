"""The user-data routes on real data sets gankit does not ship as such: scikit-learn's two
moons as an .npy of points and its digits as a folder of PNGs. Writes the files under
runs/data/, trains configs/points-moons.toml and configs/images-digits-png.toml, and
prints what ``gankit eval`` prints (beside the real-data floor).

    python benchmarks/user_data.py > benchmarks/results/user-data.txt
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits, make_moons

DATA = Path("runs/data")


def write_data() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    x, _ = make_moons(2000, noise=0.05, random_state=0)
    np.save(DATA / "moons.npy", x.astype(np.float32))
    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images, digits.target)):
        folder = DATA / "digits-png" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (image * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels).resize((16, 16), Image.BILINEAR).save(folder / f"{i}.png")


def gankit(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "gankit", *args], capture_output=True,
                       text=True, check=True)
    return r.stdout


if __name__ == "__main__":
    write_data()
    for config, run in (("configs/points-moons.toml", "runs/bench-moons"),
                        ("configs/images-digits-png.toml", "runs/bench-digits-png")):
        print(f"$ gankit train {config} --out {run}")
        train = gankit("train", config, "--out", run, "--no-progress")
        print(train.splitlines()[0])  # data · objective · steps · seconds
        print(f"$ gankit eval {run}")
        print(gankit("eval", run))
