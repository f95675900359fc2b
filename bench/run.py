"""Run every benchmark in turn (`make bench`). They need DATABASE_URL (PostgreSQL) and REDIS_URL."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "webhook_ingest.py",
    "pages.py",
    "load_webhooks.py",
    "campaign_launch.py",
    "webhook_to_browser.py",
    "idle_sockets.py",
]

if __name__ == "__main__":
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        subprocess.run([sys.executable, str(HERE / name), *sys.argv[1:]], check=True)
