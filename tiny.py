"""Small, offline stand-ins for tests, demos and examples: a Qwen2-style tokenizer and a synthetic video writer.

Nothing here is served as remote code. The entry points other code relies on, with stable signatures:

- [`build_tiny_tokenizer`]: a byte-level BPE tokenizer with Qwen2's pre-tokenizer, its chat special tokens and the
  processor's chat template, trained in about a second on built-in English text; saved files load in transformers 4.57
  and 5.x (`tokenizer_class` is `Qwen2Tokenizer`, a name both versions know).
- [`write_video`]: writes a video with PyAV whose every frame carries its own index as a 4x4 grid of bright/dark
  cells, so tests can tell which source frame a decoder returned ([`frame_index_from_pixels`]), or given frames.
- [`tiny_config`], [`build_tiny_random_model`]: the real architecture at tiny widths, as a config or as a saved
  folder with random weights (what tests load like a Hub model, at the real token layout).

Typical use:

```python
from tiny import build_tiny_tokenizer, write_video

tokenizer = build_tiny_tokenizer()                        # a transformers tokenizer, nothing written
write_video("clip.mp4", num_frames=48, width=64, height=48, fps=8)
```
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np


SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|image_pad|>", "<|video_pad|>"]

# Qwen2's pre-tokenizer split (identical to `transformers.models.qwen2.tokenization_qwen2.PRETOKENIZE_REGEX`).
QWEN2_PRETOKENIZE_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

_TRAINING_TEXT = """
You are a helpful assistant. Describe the video in detail. What is happening in this video?
What is the person doing? How many people are in the video? What color is the car? Where does the scene take place?
Summarize the main events of the clip. What happens at the beginning, in the middle and at the end of the video?
Is the man walking or running? The woman picks up a red cup from the table and drinks from it.
A dog runs across the green field and catches a ball. Two children are playing with a kite on the beach.
The camera pans from left to right over a busy street with cars, buses and people on bicycles.
Answer the question using a single word or phrase. Please answer yes or no. Explain your answer step by step.
The video shows a cooking tutorial: first the chef cuts the onions, then adds them to the hot pan with oil.
A person opens the door, walks into the kitchen and turns on the light. The weather is sunny and warm.
Which object moves first? Why did the ball fall? What will happen next? Count the number of squares.
The square moves from the top left corner to the bottom right corner while changing its color from blue to yellow.
Options: (A) walking (B) running (C) sitting (D) jumping. Best option: (B). The answer is correct.
This is an image of a cat sleeping on a sofa next to a window. The picture shows a mountain lake at sunrise.
Thank you! Can you tell me more about the second part of the video? Sure, here is a short description.
In the first frame a ball is on the floor; in the last frame the ball is in the basket. The end.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 16 24 30 60 100 2024 2025. Time: 00:01, 00:15, 01:30 seconds, minutes, hours.
"""


def build_tiny_tokenizer(save_dir: str | os.PathLike | None = None, vocab_size: int = 1000):
    """
    Builds a small Qwen2-style tokenizer without downloading anything.

    The model is a byte-level BPE trained on a few built-in English sentences (so ordinary questions tokenize into
    a handful of tokens), with Qwen2's normalizer (NFC), pre-tokenizer (regex split + byte level) and decoder. The
    five Qwen2 special tokens used by Mobile-VideoGPT come after the BPE vocabulary: `<|endoftext|>` (pad),
    `<|im_start|>`, `<|im_end|>` (eos), `<|image_pad|>` and `<|video_pad|>`. The processor's chat template is
    embedded, so `tokenizer.apply_chat_template` renders the same text as the processor (text-only conversations).

    Args:
        save_dir (`str` or `os.PathLike`, *optional*):
            If given, the tokenizer files are written there (`tokenizer.json`, `tokenizer_config.json`, `vocab.json`,
            `merges.txt`, `special_tokens_map.json`, `chat_template.jinja`) and can be reloaded with
            `AutoTokenizer.from_pretrained(save_dir)` in transformers 4.57 and 5.x.
        vocab_size (`int`, *optional*, defaults to 1000):
            Size of the BPE vocabulary before the special tokens are appended.

    Returns:
        A transformers fast tokenizer (`Qwen2TokenizerFast` in 4.57, `Qwen2Tokenizer` in 5.x) with
        `padding_side="left"`, `pad_token="<|endoftext|>"` and `eos_token="<|im_end|>"`.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import AutoTokenizer

    try:  # inside the installed package (mobilevideogpt.tiny) or from the repository root
        from .processing.processing_mobilevideogpt import CHAT_TEMPLATE
    except ImportError:
        from processing.processing_mobilevideogpt import CHAT_TEMPLATE

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(_TRAINING_TEXT.strip().splitlines(), trainer=trainer)
    tokenizer.add_special_tokens(SPECIAL_TOKENS)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(save_dir) if save_dir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        tokenizer.save(str(folder / "tokenizer.json"))
        tokenizer.model.save(str(folder))  # vocab.json + merges.txt, which the 4.57 slow Qwen2Tokenizer reads
        added_tokens_decoder = {
            str(tokenizer.token_to_id(token)): {
                "content": token,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for token in SPECIAL_TOKENS
        }
        tokenizer_config = {
            "tokenizer_class": "Qwen2Tokenizer",
            "added_tokens_decoder": added_tokens_decoder,
            "bos_token": None,
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "unk_token": None,
            "clean_up_tokenization_spaces": False,
            "errors": "replace",
            "model_max_length": 32768,
            "padding_side": "left",
            "split_special_tokens": False,
            "model_input_names": ["input_ids", "attention_mask"],
        }
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
        (folder / "special_tokens_map.json").write_text(
            json.dumps({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}, indent=2) + "\n"
        )
        (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE)
        loaded = AutoTokenizer.from_pretrained(str(folder))
    # The loaded tokenizer keeps everything in memory; the temporary folder (if any) can go.
    return loaded


_CODEC_BY_SUFFIX = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".avi": "mpeg4", ".webm": "libvpx-vp9"}
_GRID = 4  # the frame index is written as a _GRID x _GRID grid of bits (16 bits, indices < 65536)


def make_frame(index: int, width: int, height: int) -> np.ndarray:
    """
    Draws frame number `index` of the synthetic test pattern.

    The frame is a 4x4 grid of cells; cell k (row-major) is bright when bit k of `index` is set and dark otherwise,
    tinted with a colour that depends on the cell and on `index` so that every frame has different colours too.

    Returns:
        `np.ndarray` of shape `(height, width, 3)`, dtype uint8, RGB.
    """
    if not 0 <= index < 2 ** (_GRID * _GRID):
        raise ValueError(f"index must be in [0, {2 ** (_GRID * _GRID)}), got {index}")
    rows = np.minimum(np.arange(height) * _GRID // height, _GRID - 1)
    cols = np.minimum(np.arange(width) * _GRID // width, _GRID - 1)
    cell = rows[:, None] * _GRID + cols[None, :]  # (H, W) cell number
    bit = (index >> cell) & 1
    luma = np.where(bit == 1, 205, 50)
    tint = np.stack([(cell * 7 + index * 3) % 40, (cell * 13 + index * 5) % 40, (cell * 3 + index * 11) % 40], -1)
    return (luma[..., None] + tint - 20).clip(0, 255).astype(np.uint8)


def frame_index_from_pixels(frame: np.ndarray) -> int:
    """
    Reads back the index drawn by [`make_frame`] from a decoded (possibly lossy) RGB frame of shape `(H, W, 3)`.
    Each cell is judged by the mean of its central half, so compression noise and chroma subsampling do not matter.
    """
    height, width = frame.shape[:2]
    index = 0
    for k in range(_GRID * _GRID):
        row, col = divmod(k, _GRID)
        top, bottom = row * height // _GRID, (row + 1) * height // _GRID
        left, right = col * width // _GRID, (col + 1) * width // _GRID
        dy, dx = (bottom - top) // 4, (right - left) // 4
        patch = frame[top + dy : max(bottom - dy, top + dy + 1), left + dx : max(right - dx, left + dx + 1)]
        if patch.mean() > 127.5:
            index |= 1 << k
    return index


def write_video(
    path: str | os.PathLike,
    num_frames: int = 32,
    width: int = 64,
    height: int = 48,
    fps: float = 8.0,
    codec: str | None = None,
    pix_fmt: str = "yuv420p",
    timestamps: Sequence[float] | None = None,
    rotation: int | None = None,
    options: dict[str, str] | None = None,
    gop_size: int | None = None,
    frames: np.ndarray | None = None,
) -> Path:
    """
    Writes a synthetic video with PyAV whose frame `i` shows [`make_frame`]`(i)`, or the given `frames`.

    Args:
        path (`str` or `os.PathLike`):
            Output file; the container is chosen by its suffix (`.mp4`, `.mov`, `.mkv`, `.avi`, `.webm`, ...).
        num_frames (`int`, *optional*, defaults to 32): number of frames.
        width (`int`, *optional*, defaults to 64), height (`int`, *optional*, defaults to 48): frame size in pixels
            (even sizes for 4:2:0 pixel formats).
        fps (`float`, *optional*, defaults to 8.0):
            Frame rate (may be fractional, e.g. 29.97). Written as the stream rate; frames are spaced `1 / fps` apart
            unless `timestamps` is given.
        codec (`str`, *optional*):
            Encoder name (`libx264`, `mpeg4`, `libvpx-vp9`, `mjpeg`, `ffv1`, `png`, ...). Defaults by suffix:
            libx264 for mp4/mov/mkv, mpeg4 for avi, libvpx-vp9 for webm.
        pix_fmt (`str`, *optional*, defaults to `"yuv420p"`):
            Encoder pixel format, e.g. `"gray"` for greyscale or `"rgba"` / `"yuva420p"` for video with alpha.
        timestamps (`Sequence[float]`, *optional*):
            Presentation time of every frame in seconds (length `num_frames`, increasing): a variable frame rate video.
        rotation (`int`, *optional*):
            Display rotation in degrees written as container metadata (a phone video shot upright).
        options (`dict[str, str]`, *optional*):
            Encoder options; defaults to `{"crf": "12"}` for libx264 (near-lossless, bits read back reliably).
        gop_size (`int`, *optional*):
            Distance between key frames (encoder default when unset).
        frames (`np.ndarray`, *optional*):
            `(T, H, W, 3)` uint8 RGB frames to write instead of the test pattern; they set `num_frames`, `height` and
            `width`.

    Returns:
        `Path` of the written file.
    """
    import av

    path = Path(path)
    if frames is not None:
        num_frames, height, width = frames.shape[:3]
    codec = codec or _CODEC_BY_SUFFIX.get(path.suffix.lower(), "libx264")
    if timestamps is not None and len(timestamps) != num_frames:
        raise ValueError(f"{len(timestamps)} timestamps given for {num_frames} frames")
    if options is None:
        options = {"crf": "12"} if codec in ("libx264", "libx265") else {}
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "mpeg4":
            stream.bit_rate = 4_000_000
        if gop_size is not None:
            stream.codec_context.gop_size = gop_size
        time_base = Fraction(1, 1000) if timestamps is not None else 1 / rate
        stream.codec_context.time_base = time_base
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for index in range(num_frames):
            pixels = make_frame(index, width, height) if frames is None else frames[index]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            frame.pts = index if timestamps is None else round(timestamps[index] / time_base)
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def tiny_config(
    tokenizer, clip_layers: int = 3, lm_hidden: int = 64, lm_intermediate: int = 128, lm_layers: int = 2, **kwargs
):
    """`MobileVideoGPTConfig` with the real architecture at small widths (CLIP 64 wide, VideoMamba 48 wide, a Qwen2
    LM `lm_hidden` wide); `kwargs` go to the config (by default the real token counts: 2402 visual tokens per
    video), `video_config` included."""
    from transformers import CLIPVisionConfig, Qwen2Config

    from .modeling import MobileVideoGPTConfig, VideoMambaConfig

    kwargs.setdefault("video_config", VideoMambaConfig(hidden_size=48, num_hidden_layers=2, state_size=8))
    return MobileVideoGPTConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=clip_layers, num_attention_heads=4,
            image_size=224, patch_size=16, hidden_act="quick_gelu",
        ),
        text_config=Qwen2Config(
            vocab_size=len(tokenizer), hidden_size=lm_hidden, intermediate_size=lm_intermediate,
            num_hidden_layers=lm_layers, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
            rope_theta=1e6, bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        ),
        image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        **kwargs,
    )


def save_model_folder(model, tokenizer, folder: str | os.PathLike) -> Path:
    """Writes `model` (with `tokenizer`'s eos and pad ids as its generation defaults) and a processor whose token
    counts match its config to `folder`: a folder that loads like a Hub model."""
    from .processing import MobileVideoGPTProcessor
    from .processing.processing_mobilevideogpt import default_image_processor

    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    MobileVideoGPTProcessor(
        image_processor=default_image_processor(), tokenizer=tokenizer,
        num_frames=model.config.num_frames, chunk_size=model.config.chunk_size,
        frames_per_chunk=model.config.frames_per_chunk, image_tokens_per_frame=model.config.image_tokens_per_frame,
        video_tokens_per_chunk=model.config.video_tokens_per_chunk, video_size=model.config.video_config.image_size,
    ).save_pretrained(folder)
    return Path(folder)


def build_tiny_random_model(folder: str | os.PathLike, seed: int = 0) -> Path:
    """Writes a tiny random Mobile-VideoGPT folder (weights, config, processor, remote code) to `folder` once: what
    tests load like a Hub model."""
    folder = Path(folder)
    if (folder / "config.json").exists():
        return folder
    import torch

    from .modeling import MobileVideoGPTForConditionalGeneration

    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(seed)
    model = MobileVideoGPTForConditionalGeneration(tiny_config(tokenizer))
    partial = save_model_folder(model, tokenizer, folder.with_name(folder.name + ".partial"))
    partial.rename(folder)
    return folder
