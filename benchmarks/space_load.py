"""Load on the web demo: N users at once, each uploads a clip, asks a question and follow-ups (gradio_client).

Starts `space/app.py` on a free localhost port (offline; the embedded model unless --model) or uses --url, then reports
failures, the percentiles of time to first answer text and of the whole answer as users see them (queueing included),
and the app process's peak memory (resident set, sampled every 50 ms; only for an app this script started).

    python benchmarks/space_load.py --sessions 8 [--questions 2] [--max-new-tokens 32] [--concurrency 1]
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from gradio_client import Client, handle_file

from mobilevideogpt.tiny import write_video

APP = Path(__file__).resolve().parents[1] / "space" / "app.py"
QUESTIONS = ["What happens in this video?", "What colour is most common?", "What happens at the end?"]


def start_app(cache: Path, model: str | None, concurrency: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MVGPT_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    if model is None:
        env["HF_HUB_OFFLINE"] = "1"
    command = [sys.executable, str(APP), "--port", str(port), "--concurrency", str(concurrency)]
    command += ["--model", model] if model else []
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        print(line, end="", file=sys.stderr)
        if "running at" in line:
            threading.Thread(target=process.stdout.read, daemon=True).start()  # keep draining its output
            return process, line.split("running at")[1].strip()
    raise RuntimeError(f"the app exited with {process.wait()} before serving")


class MemoryPeak(threading.Thread):
    """Samples the resident memory of a process and its children until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.process, self.peak, self.stopped = psutil.Process(pid), 0, threading.Event()
        self.baseline = self.sample()

    def sample(self) -> int:
        processes = [self.process, *self.process.children(recursive=True)]
        return sum(p.memory_info().rss for p in processes if p.is_running())

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            self.peak = max(self.peak, self.sample())


def session(url: str, video: Path, questions: int, max_new_tokens: int, results: list, failures: list) -> None:
    """One user: a question, then follow-ups about the same video; (first text, total) seconds per answer."""
    try:
        client = Client(url, verbose=False)
        for question in QUESTIONS[:questions]:
            start, first = time.perf_counter(), None
            settings = (max_new_tokens, "Sampling", 1.0, 0.95)
            job = client.submit(handle_file(str(video)), question, *settings, api_name="/ask")
            for update in job:
                answer = update[0][-1]["content"][0]["text"] if update[0] else ""
                if first is None and answer not in ("", "…"):
                    first = time.perf_counter() - start
            final = job.outputs()[-1]
            if "tokens/s" not in final[4]:
                raise RuntimeError(f"no answer: {final[0][-1] if final[0] else final}")
            results.append((first or time.perf_counter() - start, time.perf_counter() - start))
    except Exception as error:  # a failed user is counted, not fatal
        failures.append(f"{type(error).__name__}: {error}")


def quantiles(seconds: np.ndarray) -> str:
    if not len(seconds):
        return "-"
    return " / ".join(f"{v:.2f}" for v in (*np.percentile(seconds, [50, 90, 99]), seconds.max()))


def run(url: str, sessions: int, questions: int, max_new_tokens: int, video: Path) -> tuple[list, list, float]:
    results, failures = [], []
    threads = [
        threading.Thread(target=session, args=(url, video, questions, max_new_tokens, results, failures))
        for _ in range(sessions)
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, failures, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8, help="concurrent users")
    parser.add_argument("--questions", type=int, default=2, help="questions per user (the first encodes the video)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=1, help="the app's concurrency limit")
    parser.add_argument("--model", help="model for the app this script starts (default: the embedded one, offline)")
    parser.add_argument("--url", help="an app already running (then no memory figures)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        video = write_video(Path(scratch) / "clip.mp4", num_frames=80, width=320, height=240, fps=8)
        if args.url:
            process, url = None, args.url
        else:
            process, url = start_app(Path(scratch) / "cache", args.model, args.concurrency)
        try:
            run(url, 1, 1, args.max_new_tokens, video)  # warm-up, not counted
            memory = MemoryPeak(process.pid) if process else None
            if memory:
                memory.start()
            results, failures, wall = run(url, args.sessions, args.questions, args.max_new_tokens, video)
            if memory:
                memory.stopped.set()
                memory.join()
        finally:
            if process:
                process.terminate()
                process.wait(timeout=30)

    first, total = (np.array([r[i] for r in results]) for i in (0, 1))
    print(f"\n{args.sessions} sessions x {args.questions} questions, {args.max_new_tokens} new tokens, "
          f"concurrency {args.concurrency}: {len(results)} answers, {len(failures)} failures, {wall:.1f} s wall")
    print("| users | answers | failures | first text p50 / p90 / p99 / max (s) | answer p50 / p90 / p99 / max (s) "
          "| app memory before -> peak |")
    print("|---|---|---|---|---|---|")
    mib = f"{memory.baseline / 2**20:.0f} -> {memory.peak / 2**20:.0f} MiB" if memory else "-"
    print(f"| {args.sessions} | {len(results)} | {len(failures)} | {quantiles(first)} | {quantiles(total)} | {mib} |")
    for failure in failures:
        print(f"failure: {failure}")


if __name__ == "__main__":
    main()
