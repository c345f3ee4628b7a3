"""Shared fixtures: a tiny tokenizer, a processor built on it, and a folder of generated videos."""

import pytest


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
