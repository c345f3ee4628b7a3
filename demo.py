"""The model the demo runs, and example clips it can answer about.

`load_demo_model` returns the model named by `--model` / `$MVGPT_MODEL`, else the published Hub model when the
Hub is reachable, else the embedded demo model committed in `training/demo_model/`: a 1.5 M-parameter
Mobile-VideoGPT (the real architecture at small widths, the package's small tokenizer) trained by this project's
three-stage recipe on synthetic clips of coloured shapes (`training/demo_model.py`). It answers questions about such
clips (a shape's colour or kind, which way one moves, how many there are, which appears first or last, whether two
touch) and nothing else; every stage of the real pipeline runs for it.
"""

import os
import random
import tempfile
from pathlib import Path

import torch
from transformers import AutoModel, AutoProcessor

from .tiny import write_video
from .training.synth import FPS, make_scene, questions, render

# Where `mvgpt push` publishes the converted 0.5B model.
HUB_MODEL_ID = "mobile-videogpt/Mobile-VideoGPT-0.5B"
DEMO_MODEL_DIR = Path(__file__).resolve().parent / "training" / "demo_model"
DEMO_NOTICE = (
    "embedded demo model (1.5 M parameters, trained here on synthetic clips of coloured shapes: it answers "
    "questions about such clips only)"
)


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
    return str(DEMO_MODEL_DIR), DEMO_NOTICE


def load_demo_model(model: str | None = None, dtype: torch.dtype = torch.float32):
    """(model, processor, description)."""
    source, description = resolve_model(model)
    processor = AutoProcessor.from_pretrained(source, trust_remote_code=True)
    loaded = AutoModel.from_pretrained(source, trust_remote_code=True, dtype=dtype).eval()
    return loaded, processor, description


def example_clips(folder: Path | None = None, count: int = 3) -> list[tuple[Path, str]]:
    """Writes `count` synthetic shape clips (16 s, 128x128, about 20 KB each) once; returns `(clip, question)` pairs,
    each question one the embedded model was trained to answer."""
    folder = folder or Path(tempfile.gettempdir()) / "mobilevideogpt-examples"
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for seed in range(count):
        rng = random.Random(f"example-{seed}")
        scene = make_scene(rng)
        kinds = {kind: question for kind, question, _ in questions(scene, rng)}
        question = kinds.get("touch") or kinds["direction"] if seed % 2 == 0 else kinds["colour"]
        path = folder / f"shapes-{seed}.mp4"
        if not path.exists():
            partial = write_video(folder / f"partial-shapes-{seed}.mp4", fps=FPS, frames=render(scene))
            partial.rename(path)
        pairs.append((path, question))
    return pairs
