"""The model the demo runs, and example clips.

`load_demo_model` returns the model named by `--model` / `$MVGPT_MODEL`, else the published Hub model when the
Hub is reachable, else the embedded default: a tiny Mobile-VideoGPT with random weights built from config (same
architecture, small widths, the package's small tokenizer). The embedded model is UNTRAINED: its answers are noise;
it shows that the whole pipeline (decoding, both pixel pipelines, CLIP, frame scoring, VideoMamba, both ET-Proj,
Qwen2 with a KV cache) runs end to end. (A trained small model is the goal of `training/demo_model.py`; the model
it builds does not yet answer well enough to be the default.)
"""

import os
import random
import tempfile
from pathlib import Path

import torch
from transformers import AutoModel, AutoProcessor

from .tiny import build_tiny_random_model, write_video
from .training.synth import FPS, make_scene, questions, render

# Where `mvgpt push` publishes the converted 0.5B model.
HUB_MODEL_ID = "mobile-videogpt/Mobile-VideoGPT-0.5B"
EMBEDDED_DIR = Path(os.environ.get("MVGPT_CACHE", Path.home() / ".cache" / "mobilevideogpt")) / "tiny-random-v1"
UNTRAINED_NOTICE = "embedded tiny model with RANDOM weights (untrained): answers are meaningless"


def hub_reachable(model_id: str, timeout: float = 5.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        from huggingface_hub import model_info

        model_info(model_id, timeout=timeout)
        return True
    except Exception:  # no network, unknown repo, auth: all mean "use the embedded model"
        return False


def resolve_model(model: str | None = None) -> tuple[str, str]:
    """(model id or folder, human-readable description of what it is)."""
    model = model or os.environ.get("MVGPT_MODEL")
    if model:
        return model, f"model {model}"
    if hub_reachable(HUB_MODEL_ID):
        return HUB_MODEL_ID, f"Hub model {HUB_MODEL_ID}"
    return str(build_tiny_random_model(EMBEDDED_DIR)), UNTRAINED_NOTICE


def load_demo_model(model: str | None = None, dtype: torch.dtype = torch.float32):
    """(model, processor, description)."""
    source, description = resolve_model(model)
    processor = AutoProcessor.from_pretrained(source, trust_remote_code=True)
    loaded = AutoModel.from_pretrained(source, trust_remote_code=True, dtype=dtype).eval()
    return loaded, processor, description


def example_clip(folder: Path | None = None) -> tuple[Path, str]:
    """Writes a synthetic clip of moving coloured shapes (16 s, 128x128, `mvgpt synth`'s kind) once; returns it and
    a question about it."""
    folder = folder or Path(tempfile.gettempdir())
    rng = random.Random("mvgpt-demo-example")
    scene = make_scene(rng)
    question = next(question for kind, question, _ in questions(scene, rng) if kind == "direction")
    path = folder / "mobilevideogpt-shapes.mp4"
    if not path.exists():
        write_video(folder / f"partial-{os.getpid()}-{path.name}", fps=FPS, frames=render(scene)).rename(path)
    return path, question
