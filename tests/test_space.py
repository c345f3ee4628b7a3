"""The web demo (space/app.py) driven through gradio_client: upload, ask, streamed answer, follow-up on the same
encoded video, per-user history, queued concurrent users, and the friendly ends of bad, too long and too large files.

The app runs as its own process (`python space/app.py`) on a free localhost port, offline, with a tiny random model
at the real token layout (16 frames, 2,402 visual tokens) built fresh in a temporary folder; test_space_browser.py
runs it with its default, the embedded demo model."""

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("gradio_client", reason="the Space tests need the `space` extra: pip install -e '.[space]'")
from gradio_client import Client, handle_file
from mobilevideogpt.tiny import build_tiny_random_model, write_video

APP = Path(__file__).resolve().parents[1] / "space" / "app.py"
# max_new_tokens, decoding, temperature, top_p: sampling, as the random model's greedy answer is blank lines
SETTINGS = (12, "Sampling", 1.0, 0.95)
# outputs of /ask, in order (the session state is not part of the API)
CHAT, GALLERY, SCORES, NOTICE, SPEED, QUESTION = range(6)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def app_server(cache: Path, *args: str, timeout: float = 180.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """Starts space/app.py offline on a free localhost port; yields (its URL, the process) and stops it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MVGPT_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    env.pop("MVGPT_MODEL", None)
    env.pop("SPACE_ID", None)
    process = subprocess.Popen(
        [sys.executable, str(APP), "--port", str(free_port()), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while not any("running at" in line for line in lines):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the app did not start:\n" + "".join(lines))
            time.sleep(0.2)
        url = next(line for line in lines if "running at" in line).split("running at")[1].strip()
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=5)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory) -> Iterator[str]:
    model = build_tiny_random_model(tmp_path_factory.mktemp("model"))
    args = ("--model", str(model), "--max-file-mb", "1", "--max-duration", "10")
    with app_server(tmp_path_factory.mktemp("cache"), *args) as (url, _):
        yield url


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 6 s, 8 fps clip: shorter than the app's 10 s limit here, more than 16 frames."""
    return write_video(tmp_path_factory.mktemp("videos") / "clip.mp4", num_frames=48, width=160, height=120)


def text_of(message: dict) -> str:
    return "".join(part["text"] for part in message["content"] if part.get("type") == "text")


def ask(client: Client, video: Path, question: str) -> list[tuple]:
    """Every update /ask streamed for one question."""
    job = client.submit(handle_file(str(video)), question, *SETTINGS, api_name="/ask")
    job.result()
    return job.outputs()


def test_binds_localhost_and_exposes_one_api_endpoint(app_url):
    assert app_url.startswith("http://127.0.0.1:")
    endpoints = Client(app_url, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert list(endpoints) == ["/ask"]


def test_ask_streams_an_answer_then_a_follow_up_reuses_the_encoded_video(app_url, clip):
    client = Client(app_url, verbose=False)
    updates = ask(client, clip, "What happens in this video?")
    answers = [text_of(update[CHAT][-1]) for update in updates]
    streamed = [answer for answer in answers if answer not in ("", "…")]
    assert len(set(streamed)) >= 2, f"the answer did not stream: {answers}"  # it grew piece by piece
    first = updates[-1]
    assert [m["role"] for m in first[CHAT]] == ["user", "assistant"]
    assert text_of(first[CHAT][0]) == "What happens in this video?" and text_of(first[CHAT][1])
    assert "Video encoded" in first[NOTICE]
    assert first[QUESTION] == ""
    speed = first[SPEED]
    for part in ("first token", "video encoding", "tokens/s", "12 new tokens", "2,402 visual tokens", "cpu · float32"):
        assert part in speed, speed

    # the 16 sampled frames with their timestamps, 8 of them marked as key frames, and a score per frame
    frames = next(update[GALLERY] for update in updates if update[GALLERY])
    assert len(frames) == 16 and frames[1]["caption"].endswith("#1 · 0.4 s")  # 1 fps gives 6, so every 3rd frame
    assert sum(frame["caption"].startswith("★ #") for frame in frames) == 8
    scores = next(update[SCORES] for update in updates if update[SCORES])
    choice = scores["columns"].index("choice")
    assert len(scores["data"]) == 16 and [row[choice] for row in scores["data"]].count("key frame") == 8

    updates = ask(client, clip, "And after that?")
    follow_up = updates[-1]
    assert "no re-encoding" in follow_up[NOTICE]
    assert "visual tokens and KV cache reused" in follow_up[SPEED] and "video encoding" not in follow_up[SPEED]
    computed = int(re.search(r"(\d+) prompt tokens computed", follow_up[SPEED]).group(1))
    assert 0 < computed < 40  # only the follow-up question, not the 2,402-token video prompt
    assert [text_of(m) for m in follow_up[CHAT][::2]] == ["What happens in this video?", "And after that?"]
    assert text_of(follow_up[CHAT][1]) == text_of(first[CHAT][1])  # the first answer is kept as it was


def test_users_have_their_own_history_and_are_served_in_turn(app_url, clip):
    clients = [Client(app_url, verbose=False) for _ in range(3)]
    jobs = [
        client.submit(handle_file(str(clip)), f"Question {i}?", *SETTINGS, api_name="/ask")
        for i, client in enumerate(clients)
    ]
    results = [job.result(timeout=120) for job in jobs]  # concurrency 1: queued, then answered one by one
    for i, result in enumerate(results):
        assert [text_of(m) for m in result[CHAT][::2]] == [f"Question {i}?"]
        assert "tokens/s" in result[SPEED]


def test_bad_files_end_in_a_message_and_the_app_keeps_serving(app_url, clip, tmp_path):
    client = Client(app_url, verbose=False)
    not_a_video = tmp_path / "holiday.mp4"
    not_a_video.write_bytes(b"this is not a video " * 200)
    too_long = write_video(tmp_path / "long.mp4", num_frames=96, width=64, height=48, fps=8)  # 12 s > 10 s
    for video, reason in [(not_a_video, "could not be read as a video"), (too_long, "lasts 12 s")]:
        result = client.predict(handle_file(str(video)), "What is this?", *SETTINGS, api_name="/ask")
        message = text_of(result[CHAT][-1])
        assert message.startswith("⚠️") and reason in message and video.name in message, message
        assert "Traceback" not in message and str(tmp_path) not in message
        assert result[GALLERY] == [] and result[SPEED] == ""

    too_large = tmp_path / "large.mp4"
    too_large.write_bytes(os.urandom(1_100_000))  # over the 1 MB upload limit this app was started with
    with pytest.raises(ValueError, match="exceeds the maximum file size"):
        client.predict(handle_file(str(too_large)), "What is this?", *SETTINGS, api_name="/ask")

    result = client.predict(handle_file(str(clip)), "Still there?", *SETTINGS, api_name="/ask")
    assert "tokens/s" in result[SPEED] and [text_of(m) for m in result[CHAT][::2]] == ["Still there?"]
