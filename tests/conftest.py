"""Shared fixtures: a tiny tokenizer, a processor built on it, a folder of generated videos, and the Python of the
transformers 4.57 environment for cross-version checks."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def compat_python() -> Path:
    """The transformers 4.57 environment's Python (`make compat-env`). CI always builds it, so there a missing
    environment fails the test; elsewhere the test is skipped."""
    default = Path(__file__).resolve().parents[1] / ".venv-onnx" / "bin" / "python"
    path = Path(os.environ.get("MVGPT_COMPAT_PYTHON", default)).absolute()
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must build the transformers 4.57 environment at {path} (make compat-env)")
        pytest.skip(f"no transformers 4.57 environment at {path}; `make compat-env` builds it")
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A small Qwen2-style tokenizer with the Qwen chat special tokens (see `tiny.build_tiny_tokenizer`)."""
    from mobilevideogpt.tiny import build_tiny_tokenizer

    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def processor(tiny_tokenizer):
    """A `MobileVideoGPTProcessor` with the original CLIP settings and the tiny tokenizer."""
    from mobilevideogpt.processing.processing_mobilevideogpt import MobileVideoGPTProcessor, default_image_processor

    return MobileVideoGPTProcessor(default_image_processor(), tiny_tokenizer)


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory):
    """A session-wide folder for generated videos."""
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def clip_video(video_dir):
    """A 12 s, 8 fps, 64x48 H.264 clip (96 frames) whose frames carry their own index (see `tiny.make_frame`)."""
    from mobilevideogpt.tiny import write_video

    return write_video(video_dir / "clip.mp4", num_frames=96, width=64, height=48, fps=8)
