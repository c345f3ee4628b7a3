"""Configuration of Mobile-VideoGPT (Shaker et al., 2025).

`MobileVideoGPTConfig` is a composite config: a CLIP ViT-B/16 vision config (image encoder), a
`VideoMambaConfig` (video encoder) and a Qwen2 text config (language model), plus typed fields for every
size the original code hard-codes. Defaults are the published Mobile-VideoGPT-0.5B model;
`MobileVideoGPTConfig.from_preset("1.5b")` gives the 1.5B model.

This file is served as remote code: it imports only the standard library and transformers.
"""

import math
from typing import Any

from transformers import CLIPVisionConfig, PretrainedConfig, Qwen2Config

# The published models: Qwen2.5-{0.5B,1.5B}-Instruct, sizes as in their config.json files.
_QWEN2_PRESETS: dict[str, dict[str, Any]] = {
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14),
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12),
}
_QWEN2_SHARED = dict(
    vocab_size=151936,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    use_sliding_window=False,
    bos_token_id=151643,
    eos_token_id=151645,
)
# openai/clip-vit-base-patch16, vision half.
_CLIP_VIT_B16 = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    image_size=224,
    patch_size=16,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    projection_dim=512,
)


class VideoMambaConfig(PretrainedConfig):
    """VideoMamba-M (`videomamba_m16_25M_f8_res224`): a bidirectional Mamba over space-time patch tokens.

    Args:
        image_size: input frame side in pixels.
        patch_size: spatial patch side; frames become `(image_size // patch_size) ** 2` tokens.
        num_channels: input channels.
        hidden_size: token width (`d_model`).
        num_hidden_layers: number of bidirectional Mamba blocks.
        num_frames: frames per clip; the temporal position embedding has exactly this many rows.
        state_size: SSM state size `N` per channel.
        conv_kernel: width of the causal depthwise convolution.
        expand: inner width factor (`d_inner = expand * hidden_size`).
        time_step_rank: rank of the time-step projection; `None` means `ceil(hidden_size / 16)`.
        rms_norm_eps: epsilon of every RMSNorm, the final one included.
        initializer_range: std of the normal init of linear layers and embeddings.
    """

    model_type = "videomamba"

    def __init__(
        self,
        image_size: int = 224,
        patch_size: int = 16,
        num_channels: int = 3,
        hidden_size: int = 576,
        num_hidden_layers: int = 32,
        num_frames: int = 8,
        state_size: int = 16,
        conv_kernel: int = 4,
        expand: int = 2,
        time_step_rank: int | None = None,
        rms_norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_channels = num_channels
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_frames = num_frames
        self.state_size = state_size
        self.conv_kernel = conv_kernel
        self.expand = expand
        self.time_step_rank = time_step_rank if time_step_rank is not None else math.ceil(hidden_size / 16)
        self.rms_norm_eps = rms_norm_eps
        self.initializer_range = initializer_range
        super().__init__(**kwargs)

    @property
    def intermediate_size(self) -> int:
        return self.expand * self.hidden_size

    @property
    def patches_per_side(self) -> int:
        return self.image_size // self.patch_size


def _text_config_from_dict(text_config: dict[str, Any]) -> Qwen2Config:
    # transformers 5.x writes `rope_parameters` and no `rope_theta`; 4.57 reads only `rope_theta` and would
    # silently fall back to 10,000. Carry the value over so a folder saved by either version loads in both.
    text_config = dict(text_config)
    rope_parameters = text_config.get("rope_parameters") or {}
    if "rope_theta" in rope_parameters and text_config.get("rope_theta") is None:
        text_config["rope_theta"] = rope_parameters["rope_theta"]
    text_config.pop("model_type", None)
    return Qwen2Config(**text_config)


class MobileVideoGPTConfig(PretrainedConfig):
    """Mobile-VideoGPT: CLIP image encoder + VideoMamba video encoder + frame scoring + two ET-Proj + Qwen2.

    A video of `num_frames` frames becomes `num_frames * image_pool_size**2` image tokens (all frames through
    CLIP) followed by `num_chunks * video_pool_size**2` video tokens (the `frames_per_chunk` key frames of each
    chunk of `chunk_size` frames through VideoMamba, together as one clip): 16 * 144 + 2 * 49 = 2402 visual
    tokens for the defaults.

    Args:
        vision_config: CLIP vision config (image encoder); default CLIP ViT-B/16.
        video_config: `VideoMambaConfig` (video encoder); default VideoMamba-M, 8 frames.
        text_config: Qwen2 config (language model); default Qwen2.5-0.5B-Instruct.
        num_frames: frames sampled per video (context frames for CLIP = video frames for VideoMamba).
        chunk_size: frames per frame-scoring chunk.
        frames_per_chunk: key frames kept per chunk (top-K); `num_chunks * frames_per_chunk` must equal
            `video_config.num_frames`.
        frame_selection: `"largest"` keeps the frames receiving the most attention, `"smallest"` the least.
        frame_scoring_precision: `"float16"` reproduces the original's fp16 scoring numerics (its scores are
            fp16-quantised, so ties and selections match); `"float32"` scores in full precision.
        vision_feature_layer: CLIP hidden state used as image features (-2: output of the 11th of 12 layers).
        image_pool_size: side of the pooled image-token grid per frame (14x14 patches -> 12x12).
        video_pool_size: side of the pooled VideoMamba grid per frame and of the video ET-Proj output grid.
        image_token_id: placeholder id of image tokens (`<|image_pad|>` in the Qwen2 vocabulary).
        video_token_id: placeholder id of a video's visual tokens (`<|video_pad|>`).
    """

    model_type = "mobilevideogpt"
    sub_configs = {"vision_config": CLIPVisionConfig, "video_config": VideoMambaConfig, "text_config": Qwen2Config}

    def __init__(
        self,
        vision_config: CLIPVisionConfig | dict | None = None,
        video_config: VideoMambaConfig | dict | None = None,
        text_config: Qwen2Config | dict | None = None,
        num_frames: int = 16,
        chunk_size: int = 8,
        frames_per_chunk: int = 4,
        frame_selection: str = "largest",
        frame_scoring_precision: str = "float16",
        vision_feature_layer: int = -2,
        image_pool_size: int = 12,
        video_pool_size: int = 7,
        image_token_id: int = 151655,
        video_token_id: int = 151656,
        **kwargs,
    ):
        if isinstance(vision_config, dict):
            vision_config = CLIPVisionConfig(**{k: v for k, v in vision_config.items() if k != "model_type"})
        self.vision_config = vision_config if vision_config is not None else CLIPVisionConfig(**_CLIP_VIT_B16)
        if isinstance(video_config, dict):
            video_config = VideoMambaConfig(**{k: v for k, v in video_config.items() if k != "model_type"})
        self.video_config = video_config if video_config is not None else VideoMambaConfig()
        if isinstance(text_config, dict):
            text_config = _text_config_from_dict(text_config)
        self.text_config = (
            text_config if text_config is not None else Qwen2Config(**_QWEN2_SHARED, **_QWEN2_PRESETS["0.5b"])
        )

        self.num_frames = num_frames
        self.chunk_size = chunk_size
        self.frames_per_chunk = frames_per_chunk
        self.frame_selection = frame_selection
        self.frame_scoring_precision = frame_scoring_precision
        self.vision_feature_layer = vision_feature_layer
        self.image_pool_size = image_pool_size
        self.video_pool_size = video_pool_size
        self.image_token_id = image_token_id
        self.video_token_id = video_token_id

        kwargs.setdefault("tie_word_embeddings", self.text_config.tie_word_embeddings)
        kwargs.setdefault(
            "auto_map",
            {
                "AutoConfig": "configuration_mobilevideogpt.MobileVideoGPTConfig",
                "AutoModel": "modeling_mobilevideogpt.MobileVideoGPTForConditionalGeneration",
                "AutoModelForImageTextToText": "modeling_mobilevideogpt.MobileVideoGPTForConditionalGeneration",
                "AutoModelForCausalLM": "modeling_mobilevideogpt.MobileVideoGPTForConditionalGeneration",
            },
        )
        super().__init__(**kwargs)
        self._validate()

    def _validate(self) -> None:
        if self.frame_selection not in ("largest", "smallest"):
            raise ValueError(f"frame_selection must be 'largest' or 'smallest', got {self.frame_selection!r}")
        if self.frame_scoring_precision not in ("float16", "float32"):
            raise ValueError(
                f"frame_scoring_precision must be 'float16' or 'float32', got {self.frame_scoring_precision!r}"
            )
        if self.num_frames % self.chunk_size:
            raise ValueError(f"num_frames ({self.num_frames}) must be a multiple of chunk_size ({self.chunk_size})")
        if not 0 < self.frames_per_chunk <= self.chunk_size:
            raise ValueError(f"frames_per_chunk ({self.frames_per_chunk}) must be in 1..chunk_size ({self.chunk_size})")
        if self.num_chunks * self.frames_per_chunk != self.video_config.num_frames:
            raise ValueError(
                f"num_frames // chunk_size * frames_per_chunk = {self.num_chunks * self.frames_per_chunk} key frames,"
                f" but VideoMamba takes exactly video_config.num_frames = {self.video_config.num_frames}"
            )
        # The video ET-Proj views a chunk's key-frame tokens as one square pseudo-grid (see ETProjector).
        if math.isqrt(self.video_tokens_per_chunk_in) ** 2 != self.video_tokens_per_chunk_in:
            raise ValueError(
                f"frames_per_chunk * video_pool_size**2 = {self.video_tokens_per_chunk_in} must be a perfect square"
            )

    @property
    def num_chunks(self) -> int:
        return self.num_frames // self.chunk_size

    @property
    def image_tokens_per_frame(self) -> int:
        return self.image_pool_size**2

    @property
    def video_tokens_per_chunk(self) -> int:
        return self.video_pool_size**2

    @property
    def video_tokens_per_chunk_in(self) -> int:
        """Tokens entering the video ET-Proj per chunk: its key frames' pooled VideoMamba tokens."""
        return self.frames_per_chunk * self.video_pool_size**2

    @property
    def visual_tokens_per_video(self) -> int:
        return self.num_frames * self.image_tokens_per_frame + self.num_chunks * self.video_tokens_per_chunk

    @classmethod
    def from_preset(cls, name: str, **kwargs) -> "MobileVideoGPTConfig":
        """The published sizes: `"0.5b"` (Mobile-VideoGPT-0.5B, the default) or `"1.5b"`."""
        if name not in _QWEN2_PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(_QWEN2_PRESETS)}")
        return cls(text_config=Qwen2Config(**_QWEN2_SHARED, **_QWEN2_PRESETS[name]), **kwargs)


__all__ = ["MobileVideoGPTConfig", "VideoMambaConfig"]
