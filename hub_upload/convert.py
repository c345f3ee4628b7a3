"""Convert the published Mobile-VideoGPT release into one Hub-ready folder (spec section 8).

Sources:
    --original DIR    the Mobile-VideoGPT Hub repo (`Amshaker/Mobile-VideoGPT-0.5B` or `-1.5B`): Qwen2 LM,
                      `model.mm_projector.*` (video ET-Proj), `model.image_mm_projector.*` (image ET-Proj), the
                      VideoMamba tower under `model.vision_tower.vision_encoder.*` when present, config.json,
                      tokenizer files, generation_config.json.
    --clip DIR        `openai/clip-vit-base-patch16` (a full CLIPModel; its vision half is used).
    --videomamba FILE `videomamba_m16_25M_f8_res224.pth` (keys `vision_encoder.*`, possibly under `model`/`module`).
                      The original's inference re-loads the tower from this file, so when both exist its values
                      are used and the converter reports whether they equal the repo's.

Every source tensor is either used exactly once or reported as known-unused; an unknown or missing key, or a
shape that disagrees with the config, stops the conversion with the key's name. Only safetensors files and
`torch.load(weights_only=True)` are read.
"""

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm
from transformers import AutoTokenizer, CLIPVisionConfig, GenerationConfig, Qwen2Config

from ..modeling import MobileVideoGPTConfig, MobileVideoGPTForConditionalGeneration, VideoMambaConfig
from ..processing import MobileVideoGPTProcessor, default_image_processor


class ConversionError(ValueError):
    """The sources cannot be converted faithfully; the message names the file and key."""


# Original key prefix -> our key prefix. Reversible: each side is unique.
ORIGINAL_TO_OURS: dict[str, str] = {
    "model.embed_tokens.": "model.language_model.embed_tokens.",
    "model.layers.": "model.language_model.layers.",
    "model.norm.": "model.language_model.norm.",
    "lm_head.": "lm_head.",
    "model.mm_projector.mlp.mlp.0.": "model.video_projector.fc1.",
    "model.mm_projector.mlp.mlp.2.": "model.video_projector.fc2.",
    "model.mm_projector.peg.peg.0.": "model.video_projector.pos_conv.",
    "model.image_mm_projector.mlp.mlp.0.": "model.image_projector.fc1.",
    "model.image_mm_projector.mlp.mlp.2.": "model.image_projector.fc2.",
    "model.image_mm_projector.peg.peg.0.": "model.image_projector.pos_conv.",
}
REPO_VIDEOMAMBA_PREFIX = "model.vision_tower.vision_encoder."
PTH_VIDEOMAMBA_PREFIX = "vision_encoder."
REPO_CLIP_PREFIX = "model.image_vision_tower."
CLIP_VISION_PREFIX = "vision_model."
OURS_VIDEOMAMBA_PREFIX = "model.video_encoder."
OURS_CLIP_PREFIX = "model.image_encoder."

# Tensors the release carries that the model does not use, with the reason.
VIDEOMAMBA_UNUSED = {"clip_decoder.": "VideoMamba's distillation head, unused at inference (spec 3.1)"}
PTH_UNUSED = {
    "vision_encoder.pool_norm.": "pooling norm, disabled in Mobile-VideoGPT (add_pool_norm=False)",
    "vision_encoder.clip_decoder.": "VideoMamba's distillation head, unused at inference",
    "text_encoder.": "VideoMamba's text tower",
    "vision_proj.": "VideoMamba's contrastive head",
    "text_proj.": "VideoMamba's contrastive head",
    "itm_head.": "VideoMamba's matching head",
    "clip_teacher.": "VideoMamba's CLIP teacher",
    "temp": "VideoMamba's contrastive temperature",
}
CLIP_UNUSED = {
    "text_model.": "CLIP text tower",
    "visual_projection.": "CLIP projection head (the model takes hidden state -2)",
    "text_projection.": "CLIP text projection",
    "logit_scale": "CLIP logit scale",
    "vision_model.embeddings.position_ids": "buffer, recomputed",
}


@dataclass
class ConversionReport:
    """What happened to every source tensor."""

    used: dict[str, int] = field(default_factory=dict)  # source file -> tensors used
    unused: dict[str, list[str]] = field(default_factory=dict)  # reason -> source keys
    notes: list[str] = field(default_factory=list)

    def skip(self, key: str, reason: str) -> None:
        self.unused.setdefault(reason, []).append(key)

    def __str__(self) -> str:
        lines = [f"used {n} tensors from {source}" for source, n in self.used.items()]
        lines += [f"not used ({reason}): {len(keys)} tensors, e.g. {keys[0]}" for reason, keys in self.unused.items()]
        return "\n".join(lines + self.notes)


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint file or folder: safetensors, or torch pickles read with weights_only=True."""
    if path.is_dir():
        files = sorted(path.glob("*.safetensors")) or sorted(path.glob("pytorch_model*.bin"))
        if not files:
            raise ConversionError(f"{path}: no *.safetensors or pytorch_model*.bin weights found")
        tensors: dict[str, torch.Tensor] = {}
        for file in files:
            for key, value in load_tensors(file).items():
                if key in tensors:
                    raise ConversionError(f"{path}: key {key} appears in more than one weights file")
                tensors[key] = value
        return tensors
    if path.suffix == ".safetensors":
        return load_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle's errors vary by cause; all mean "not a plain tensor checkpoint"
        raise ConversionError(
            f"{path}: refusing to read it: not loadable with torch.load(weights_only=True) (it contains more than "
            f"tensors and plain containers, and unpickling it could run code). Re-save its tensors with "
            f"safetensors or torch.save(state_dict). Cause: {str(error).splitlines()[0]}"
        ) from error
    for wrapper in ("model", "module", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConversionError(f"{path}: expected a dict of tensors (optionally under 'model' or 'module')")
    return state


def _match(key: str, table: dict[str, str]) -> str | None:
    return next((prefix for prefix in table if key.startswith(prefix) or key == prefix.rstrip(".")), None)


def _videomamba_config(tower: dict[str, torch.Tensor], source: str) -> VideoMambaConfig:
    """VideoMamba sizes read from its tensors (VideoMamba-M: 576 wide, 32 layers, 8 frames, 224 px)."""
    try:
        hidden = tower["cls_token"].shape[-1]
        patch = tower["patch_embed.proj.weight"].shape[-1]
        patches = tower["pos_embed"].shape[1] - 1
        mixer = "layers.0.mixer."
        inner = tower[mixer + "in_proj.weight"].shape[0] // 2
        return VideoMambaConfig(
            image_size=math.isqrt(patches) * patch,
            patch_size=patch,
            hidden_size=hidden,
            num_hidden_layers=len({k.split(".")[1] for k in tower if k.startswith("layers.")}),
            num_frames=tower["temporal_pos_embedding"].shape[1],
            state_size=tower[mixer + "A_log"].shape[1],
            conv_kernel=tower[mixer + "conv1d.weight"].shape[-1],
            expand=inner // hidden,
            time_step_rank=tower[mixer + "dt_proj.weight"].shape[1],
        )
    except KeyError as error:
        raise ConversionError(f"{source}: VideoMamba tensor {error.args[0]} is missing") from error


def _text_config(original: dict, embed_rows: int) -> Qwen2Config:
    keys = (
        "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
        "max_position_embeddings", "rope_theta", "rms_norm_eps", "hidden_act", "bos_token_id", "eos_token_id",
        "tie_word_embeddings", "initializer_range",
    )
    missing = [k for k in keys[:5] if k not in original]
    if missing:
        raise ConversionError(f"config.json of --original lacks {missing}")
    # The published vocabulary size is read from the embedding tensor, not config.json (spec 7.2).
    return Qwen2Config(
        **{k: original[k] for k in keys if original.get(k) is not None},
        vocab_size=embed_rows,
        use_sliding_window=False,
    )


def convert(
    original: Path,
    clip: Path,
    output: Path,
    videomamba: Path | None = None,
    dtype: str = "float16",
    max_shard_size: str = "2GB",
) -> ConversionReport:
    """Convert the release into `output` (created; must not exist or be empty) and return what was done."""
    if output.exists() and any(output.iterdir()):
        raise ConversionError(f"{output} exists and is not empty: choose a new --output folder")
    torch_dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    report = ConversionReport()
    original_config = json.loads((original / "config.json").read_text())
    if original_config.get("mm_projector_type", "etp") != "etp" or original_config.get("image_mm_projector_type", "etp") != "etp":
        raise ConversionError("only ET-Proj projectors (mm_projector_type 'etp') are supported")
    if original_config.get("mm_vision_select_layer", -2) != -2:
        report.notes.append(f"mm_vision_select_layer = {original_config['mm_vision_select_layer']}")

    ours: dict[str, torch.Tensor] = {}

    def put(key: str, tensor: torch.Tensor, source: str) -> None:
        if key in ours:
            raise ConversionError(f"{source}: {key} would be written twice")
        ours[key] = tensor
        report.used[source] = report.used.get(source, 0) + 1

    # 1. Mobile-VideoGPT repo: LM, projectors, maybe the VideoMamba tower.
    repo = load_tensors(original)
    repo_tower: dict[str, torch.Tensor] = {}
    for key in tqdm(sorted(repo), desc="Mobile-VideoGPT tensors"):
        if key.startswith(REPO_VIDEOMAMBA_PREFIX):
            name = key[len(REPO_VIDEOMAMBA_PREFIX) :]
            if (unused := _match(name, VIDEOMAMBA_UNUSED)) is not None:
                report.skip(key, VIDEOMAMBA_UNUSED[unused])
            else:
                repo_tower[name] = repo[key]
        elif (prefix := _match(key, ORIGINAL_TO_OURS)) is not None:
            put(ORIGINAL_TO_OURS[prefix] + key[len(prefix) :], repo[key], str(original))
        elif key.startswith(REPO_CLIP_PREFIX):
            report.skip(key, "CLIP copy in the repo: the original re-loads CLIP from --clip at inference")
        elif key.endswith("rotary_emb.inv_freq"):
            report.skip(key, "rotary buffer, recomputed")
        else:
            raise ConversionError(f"{original}: unknown tensor {key} {tuple(repo[key].shape)}")

    # 2. VideoMamba: the .pth (what the original's inference really uses) and/or the repo's copy.
    tower = repo_tower
    if videomamba is not None:
        pth_tower = {}
        for key, value in load_tensors(videomamba).items():
            if (unused := _match(key, PTH_UNUSED)) is not None:
                report.skip(key, PTH_UNUSED[unused])
            elif key.startswith(PTH_VIDEOMAMBA_PREFIX):
                pth_tower[key[len(PTH_VIDEOMAMBA_PREFIX) :]] = value
            else:
                raise ConversionError(f"{videomamba}: unknown tensor {key} {tuple(value.shape)}")
        if repo_tower:
            differing = sorted(
                k for k in pth_tower.keys() | repo_tower.keys()
                if k not in pth_tower or k not in repo_tower or not torch.equal(pth_tower[k], repo_tower[k].to(pth_tower[k].dtype))
            )
            report.notes.append(
                "VideoMamba: the repo's tower equals the .pth" if not differing else
                f"VideoMamba: the repo's tower differs from the .pth in {len(differing)} tensors (e.g. {differing[0]}); "
                "using the .pth, as the original's inference does"
            )
            for key in repo_tower:
                report.skip(REPO_VIDEOMAMBA_PREFIX + key, "VideoMamba tower taken from the .pth instead")
        tower, tower_source = pth_tower, str(videomamba)
    else:
        tower_source = str(original)
    if not tower:
        raise ConversionError(f"{original} has no VideoMamba tower ({REPO_VIDEOMAMBA_PREFIX}*): pass --videomamba FILE")
    for name, value in tower.items():
        put(OURS_VIDEOMAMBA_PREFIX + name, value.float(), tower_source)

    # 3. CLIP vision half.
    clip_config = json.loads((clip / "config.json").read_text())
    vision = clip_config.get("vision_config", clip_config)
    vision_config = CLIPVisionConfig(**{k: v for k, v in vision.items() if k not in ("model_type", "architectures")})
    for key, value in load_tensors(clip).items():
        if (unused := _match(key, CLIP_UNUSED)) is not None:
            report.skip(key, CLIP_UNUSED[unused])
        elif key.startswith(CLIP_VISION_PREFIX):
            put(OURS_CLIP_PREFIX + key[len(CLIP_VISION_PREFIX) :], value.float(), str(clip))
        else:
            raise ConversionError(f"{clip}: unknown tensor {key} {tuple(value.shape)}")

    # 4. Config, with every size checked against the tensors by the strict load below.
    text_config = _text_config(original_config, ours["model.language_model.embed_tokens.weight"].shape[0])
    lm_head = ours.get("lm_head.weight")
    if lm_head is not None and text_config.tie_word_embeddings:
        if torch.equal(lm_head, ours["model.language_model.embed_tokens.weight"]):
            del ours["lm_head.weight"]
            report.used[str(original)] -= 1
            report.skip("lm_head.weight", "equal to the tied input embedding, stored once")
        else:
            text_config.tie_word_embeddings = False
            report.notes.append("lm_head differs from the input embedding: kept untied")
    processor = MobileVideoGPTProcessor(image_processor=default_image_processor(), tokenizer=AutoTokenizer.from_pretrained(original))
    config = MobileVideoGPTConfig(
        vision_config=vision_config,
        video_config=_videomamba_config(tower, tower_source),
        text_config=text_config,
        vision_feature_layer=original_config.get("mm_vision_select_layer", -2),
        image_token_id=processor.image_token_id,
        video_token_id=processor.video_token_id,
        tie_word_embeddings=text_config.tie_word_embeddings,
    )
    with torch.device("meta"):
        model = MobileVideoGPTForConditionalGeneration(config)
    for key, value in ours.items():
        if not key.startswith((OURS_VIDEOMAMBA_PREFIX, OURS_CLIP_PREFIX)):
            ours[key] = value.to(torch_dtype)
    try:
        result = model.load_state_dict(ours, strict=False, assign=True)
    except RuntimeError as error:  # shape mismatches, named by torch
        raise ConversionError(f"tensor shapes disagree with the config: {error}") from error
    missing = [k for k in result.missing_keys if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or result.unexpected_keys:
        raise ConversionError(f"missing tensors: {missing}; unexpected tensors: {result.unexpected_keys}")
    if config.tie_word_embeddings:
        model.lm_head.weight = model.model.language_model.embed_tokens.weight

    # 5. Write the folder: weights + config + remote code, generation config, processor, card.
    output.mkdir(parents=True, exist_ok=True)
    if (original / "generation_config.json").exists():
        model.generation_config = GenerationConfig.from_pretrained(original)
    model.save_pretrained(output, max_shard_size=max_shard_size)
    processor.save_pretrained(output)
    (output / "README.md").write_text(model_card(original_config, config, dtype, report))
    for name in ("LICENSE", "LICENSE.txt"):
        if (original / name).exists():
            shutil.copy(original / name, output / name)
    return report


def model_card(original_config: dict, config: MobileVideoGPTConfig, dtype: str, report: ConversionReport) -> str:
    size = "1.5B" if config.text_config.hidden_size == 1536 else "0.5B"
    base = original_config.get("_name_or_path") or f"Amshaker/Mobile-VideoGPT-{size}"
    return f"""---
license: cc-by-nc-sa-4.0
base_model: {base}
pipeline_tag: video-text-to-text
library_name: transformers
tags:
- mobilevideogpt
- video-language-model
- custom_code
---

# Mobile-VideoGPT-{size} (transformers remote code)

Mobile-VideoGPT (Shaker et al., 2025, *Fast and Accurate Video Understanding Language Model*) converted into one
checkpoint: CLIP ViT-B/16 image encoder, VideoMamba-M video encoder, attention-based key-frame scoring, two
ET-Proj token projectors and Qwen2.5-{size}. Weights from `{base}`, `openai/clip-vit-base-patch16` and VideoMamba-M,
unchanged; the LM is stored in {dtype}, both encoders in float32 (as the original runs them).

```python
import torch
from transformers import AutoModel, AutoProcessor

repo = "<this repo>"
processor = AutoProcessor.from_pretrained(repo, trust_remote_code=True)
model = AutoModel.from_pretrained(repo, trust_remote_code=True, dtype=torch.float32)  # float16 on GPU
messages = [{{"role": "user", "content": [{{"type": "video", "path": "clip.mp4"}},
                                          {{"type": "text", "text": "What is happening in this video?"}}]}}]
inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                       return_dict=True, return_tensors="pt")
out = model.generate(**inputs, max_new_tokens=128, do_sample=False)
print(processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0])
```

Licence: the original repository states CC BY-NC-SA 4.0 in its README (its LICENSE file says CC BY 4.0); Qwen2.5
is Apache-2.0, CLIP MIT, VideoMamba Apache-2.0. Conversion report:

```
{report}
```
"""
