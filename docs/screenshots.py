"""README's TensorBoard screenshots, made again: python docs/screenshots.py

Runs a four-job sweep in a temporary directory, serves it with TensorBoard and saves what a headless
Chromium shows of the Scalars, Images and HParams tabs as docs/tensorboard_*.png. Needs Chromium and its
driver (Debian: apt install chromium chromium-driver) and selenium (pip install -e ".[docs]").
"""

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SWEEP = [
    "-m",
    "optimizer=sgd,adam,rmsprop,lbfgs",
    "data.val_fraction=0.2",
    "trainer.max_epochs=150",
    "callbacks.convergence.stop=false",
    "~callbacks.progress_bar",
]
TABS = {"scalars": 6, "images": 6, "hparams": 8}  # tab: seconds to let it draw
WINDOW = (1800, 1000)  # wide enough for the HParams table to show metric columns too


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def browser():
    """Headless Chromium through selenium, or the one line that says what to install."""
    try:
        from selenium import webdriver
    except ImportError:
        sys.exit('docs/screenshots.py needs selenium: pip install -e ".[docs]" (and Chromium with its driver).')
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options)


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *SWEEP], cwd=workdir, check=True)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", "logs", "--host", "127.0.0.1", f"--port={port}"],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        driver = browser()
        try:
            time.sleep(5)  # TensorBoard reads the event files
            for tab, seconds in TABS.items():
                driver.get(f"http://127.0.0.1:{port}/#{tab}")
                time.sleep(seconds)
                path = ROOT / "docs" / f"tensorboard_{tab}.png"
                driver.save_screenshot(str(path))
                print(path.relative_to(ROOT))
        finally:
            driver.quit()
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
