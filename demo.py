"""The model the demo runs, and example clips it can answer about.

`load_demo_model` returns the model named by `--model` / `$MVGPT_MODEL`, else the published Hub model when the
Hub is reachable, else the embedded demo model committed in `embedded_model/`: a small Mobile-VideoGPT (the real
architecture at small widths, the package's small tokenizer) that this project trained by the three-stage recipe on
synthetic clips of coloured shapes (`training/demo_model.py`). It answers questions about such clips (a shape's
colour or kind, which way one moves, how many there are, which colour appears first or last, whether two touch) and
nothing else; every stage of the real pipeline runs for it.
"""

import os
import random
import tempfile
import zlib
from pathlib import Path

import torch
from transformers import AutoModel, AutoProcessor

from .tiny import write_video
from .training.synth import FPS, make_scene, questions, render

# Where `mvgpt push` publishes the converted 0.5B model.
HUB_MODEL_ID = "mobile-videogpt/Mobile-VideoGPT-0.5B"
DEMO_MODEL_DIR = Path(__file__).resolve().parent / "embedded_model"
DEMO_NOTICE = (
    "embedded demo model (trained here on synthetic clips of coloured shapes: it answers questions about such clips "
    "only)"
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
    """Writes `count` synthetic clips of moving coloured shapes (`mvgpt synth`'s kind: 16 s, 112x112, about 10 KB
    each) once; returns `(clip, question)` pairs, each question one the embedded model was trained to answer."""
    folder = folder or Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    kinds = ("direction", "touch", "colour", "order", "count", "shape")
    pairs = []
    for index in range(count):
        rng = random.Random(f"mvgpt-demo-example-{index}")
        scene = make_scene(rng)
        asked = {kind: question for kind, question, _ in questions(scene, rng)}
        question = next(asked[kind] for kind in kinds[index % len(kinds):] + kinds if kind in asked)
        # the name changes with the scene, so a clip left by another version of the generator is never reused
        path = folder / f"mobilevideogpt-shapes-{zlib.crc32(repr(scene).encode()):08x}.mp4"
        if not path.exists():
            write_video(folder / f"partial-{os.getpid()}-{path.name}", fps=FPS, frames=render(scene)).rename(path)
        pairs.append((path, question))
    return pairs
