"""The model the demo runs, and one end-to-end answer on a video.

`load_demo_model` returns the model named by `--model` / `$MVGPT_MODEL`, else the published Hub model when the
Hub is reachable, else the embedded default: a tiny Mobile-VideoGPT with random weights built from config (same
architecture, small widths, a small tokenizer). The embedded model is UNTRAINED: its answers are noise; it shows
that the whole pipeline (decoding, both pixel pipelines, CLIP, frame scoring, VideoMamba, both ET-Proj, Qwen2 with
a KV cache) runs end to end.
"""

import os
import tempfile
from pathlib import Path

import torch
from transformers import AutoModel, AutoProcessor, CLIPVisionConfig, Qwen2Config

from .modeling import MobileVideoGPTConfig, MobileVideoGPTForConditionalGeneration, VideoMambaConfig
from .processing import MobileVideoGPTProcessor
from .processing.processing_mobilevideogpt import default_image_processor
from .tiny import build_tiny_tokenizer, write_video

# Where `mvgpt push` publishes the converted 0.5B model.
HUB_MODEL_ID = "mobile-videogpt/Mobile-VideoGPT-0.5B"
EMBEDDED_DIR = Path(os.environ.get("MVGPT_CACHE", Path.home() / ".cache" / "mobilevideogpt")) / "tiny-random-v1"
UNTRAINED_NOTICE = "embedded tiny model with RANDOM weights (untrained): answers are meaningless"


def tiny_config(tokenizer) -> MobileVideoGPTConfig:
    """Real architecture and token counts (2402 visual tokens per video), small widths."""
    return MobileVideoGPTConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4, image_size=224,
            patch_size=16, hidden_act="quick_gelu",
        ),
        video_config=VideoMambaConfig(hidden_size=48, num_hidden_layers=2, state_size=8),
        text_config=Qwen2Config(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1e6,
            bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        ),
        image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tokenizer.convert_tokens_to_ids("<|video_pad|>"),
    )


def build_embedded_model(folder: Path = EMBEDDED_DIR, seed: int = 0) -> Path:
    """Write the embedded tiny random model (weights, config, processor, remote code) to `folder` once."""
    if (folder / "config.json").exists():
        return folder
    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(seed)
    model = MobileVideoGPTForConditionalGeneration(tiny_config(tokenizer))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    processor = MobileVideoGPTProcessor(image_processor=default_image_processor(), tokenizer=tokenizer)
    partial = folder.with_name(folder.name + ".partial")
    model.save_pretrained(partial)
    processor.save_pretrained(partial)
    partial.rename(folder)
    return folder


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
    return str(build_embedded_model()), UNTRAINED_NOTICE


def load_demo_model(model: str | None = None, dtype: torch.dtype = torch.float32):
    """(model, processor, description)."""
    source, description = resolve_model(model)
    processor = AutoProcessor.from_pretrained(source, trust_remote_code=True)
    loaded = AutoModel.from_pretrained(source, trust_remote_code=True, dtype=dtype).eval()
    return loaded, processor, description


def example_video(folder: Path | None = None) -> Path:
    """A generated 6-second clip (moving coloured shapes) for when the user gives none."""
    folder = folder or Path(tempfile.gettempdir())
    return write_video(folder / "mobilevideogpt-example.mp4", num_frames=48, width=320, height=240, fps=8.0)
