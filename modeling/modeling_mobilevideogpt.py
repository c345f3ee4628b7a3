"""Mobile-VideoGPT (Shaker et al., 2025, "Fast and Accurate Video Understanding Language Model").

Data flow for one video of 16 frames (0.5B sizes; H = 896 is the LM width):

    context frames (16, 3, 224, 224) -> CLIP ViT-B/16, hidden state -2, CLS dropped -> (16, 196, 768)
        -> FrameScorer per chunk of 8 frames -> 4 key frames per chunk -> indices (8,)
        -> image ET-Proj -> (16, 144, H)
    video frames (16, 3, 224, 224)[indices] -> VideoMambaEncoder as ONE 8-frame clip -> (1, 1 + 8 * 196, 576)
        -> CLS dropped, 2x2 average pool per frame -> (8, 49, 576) -> per chunk (2, 196, 576)
        -> video ET-Proj -> (2, 49, H)
    visual tokens = [16 x 144 image tokens | 2 x 49 video tokens] = (2402, H), written over the 2402
    `<|video_pad|>` placeholders of the prompt, then Qwen2.

This file is served as remote code: module-level imports are the standard library, torch and transformers
only; mamba_ssm / causal_conv1d kernels are imported lazily and used on CUDA when installed.
"""

import functools
import inspect
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionModel, GenerationMixin, PreTrainedModel, Qwen2Model
from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.models.clip.modeling_clip import CLIPEncoderLayer
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput

try:  # transformers 5.x: init functions that leave tensors loaded from a checkpoint untouched
    from transformers import initialization as init
except ImportError:  # transformers 4.x initialises before loading
    from torch.nn import init

from .configuration_mobilevideogpt import MobileVideoGPTConfig, VideoMambaConfig

# The KV cache's name, as argument and output field: `cache` from transformers 5.24, `past_key_values` before.
CACHE_KWARG = "cache" if "cache" in inspect.signature(Qwen2Model.forward).parameters else "past_key_values"

# ---------------------------------------------------------------------------------------------------------------
# Selective scan
# ---------------------------------------------------------------------------------------------------------------

def selective_scan_sequential(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor
) -> torch.Tensor:
    """The selective scan by its definition, one position at a time (the reference for the fast paths).

    With state h_{-1} = 0, for t = 0..L-1:
        h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t      h: (batch, d_inner, N)
        y_t = sum_n C_t[n] * h_t[:, :, n] + D * u_t

    Args:
        u: (batch, d_inner, L) input; delta: (batch, d_inner, L) time steps (after softplus);
        A: (d_inner, N); B, C: (batch, N, L); D: (d_inner,).
    Returns:
        y: (batch, d_inner, L), in the dtype of `u`.
    """
    state = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    outputs = []
    for t in range(u.shape[-1]):
        state = torch.exp(delta[:, :, t, None] * A) * state + (delta[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        outputs.append((state * C[:, None, :, t]).sum(-1))
    return torch.stack(outputs, dim=-1) + D[:, None] * u


def selective_scan_blockwise(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    block_size: int = 32,
) -> torch.Tensor:
    """The same scan as `selective_scan_sequential`, with the per-token work cut to one fused multiply-add.

    For a block of `block_size` tokens at a time, the decays exp(delta * A), the inputs delta * B * u and the
    outputs C . h are computed as whole tensors (time-major, so each token's slice is contiguous); only the
    recurrence h_t = a_t * h_{t-1} + x_t itself steps token by token, as in the CUDA kernel. No rescaling is
    involved, so any time step is exact. Shapes as in `selective_scan_sequential`; computed in float32.
    """
    batch, inner, length = u.shape
    delta_t = delta.permute(2, 0, 1).contiguous()  # (L, batch, d_inner)
    inputs_t = (delta * u).permute(2, 0, 1).contiguous()
    B_t = B.permute(2, 0, 1).contiguous()  # (L, batch, N)
    C_t = C.permute(2, 0, 1).contiguous()
    state = u.new_zeros(batch, inner, A.shape[1])
    outputs = []
    for start in range(0, length, block_size):
        stop = min(start + block_size, length)
        decay = torch.exp(delta_t[start:stop, :, :, None] * A)  # (q, batch, d_inner, N)
        inputs = inputs_t[start:stop, :, :, None] * B_t[start:stop, :, None, :]
        states = []
        for t in range(stop - start):
            state = torch.addcmul(inputs[t], decay[t], state)
            states.append(state)
        outputs.append(torch.einsum("qben,qbn->qbe", torch.stack(states), C_t[start:stop]))
    return torch.cat(outputs).permute(1, 2, 0) + D[:, None] * u


def _linear_recurrence(decay: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """All states of h_t = decay_t * h_{t-1} + inputs_t (h_{-1} = 0) along dim 0: (L, ...) -> (L, ...).

    Written for TorchScript: scripted, the loop exports to ONNX as one `Loop` node whatever L is, where a trace
    would unroll L steps.
    """
    state = torch.zeros_like(inputs[0])
    states: list[torch.Tensor] = []
    for t in range(inputs.shape[0]):
        state = torch.addcmul(inputs[t], decay[t], state)
        states.append(state)
    return torch.stack(states)


@functools.cache
def _scripted_linear_recurrence():
    """`_linear_recurrence` compiled by TorchScript once (only when exporting)."""
    return torch.jit.script(_linear_recurrence)


def selective_scan_exportable(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor
) -> torch.Tensor:
    """The same scan as `selective_scan_blockwise`, as a graph an ONNX export keeps small (used while exporting).

    The decays, inputs and outputs are whole-sequence tensors and the recurrence is one scripted loop (an ONNX
    `Loop`), with the same float32 arithmetic as `selective_scan_blockwise`. Shapes as in `selective_scan_sequential`.
    """
    decay = torch.exp(delta.permute(2, 0, 1)[..., None] * A)  # (L, batch, d_inner, N)
    inputs = (delta * u).permute(2, 0, 1)[..., None] * B.permute(2, 0, 1)[:, :, None, :]
    states = _scripted_linear_recurrence()(decay, inputs)
    return torch.einsum("lben,lbn->bel", states, C.permute(2, 0, 1)) + D[:, None] * u


def _mamba_kernels():
    """(selective_scan_fn, causal_conv1d_fn) from mamba_ssm / causal_conv1d, or None when not installed."""
    try:
        from causal_conv1d import causal_conv1d_fn
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except ImportError:
        return None
    return selective_scan_fn, causal_conv1d_fn


# ---------------------------------------------------------------------------------------------------------------
# VideoMamba
# ---------------------------------------------------------------------------------------------------------------


class VideoMambaRMSNorm(nn.Module):
    """RMSNorm without bias, computed in float32; returns float32 (the residual stream stays fp32)."""

    def __init__(self, hidden_size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states.float()
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        return hidden_states * torch.rsqrt(variance + self.eps) * self.weight.float()


class VideoMambaMixer(nn.Module):
    """Bidirectional Mamba mixer (VideoMamba's "bimamba v2").

    One input projection gives x and the gate z; a forward and a backward selective-SSM branch, each with its
    own conv1d / x_proj / dt_proj / A_log / D, run over the sequence and over its reverse; their outputs are
    summed (not averaged) and projected back. Parameter names follow the original checkpoint.
    """

    def __init__(self, config: VideoMambaConfig):
        super().__init__()
        hidden, inner, rank, state = config.hidden_size, config.intermediate_size, config.time_step_rank, config.state_size
        self.time_step_rank = rank
        self.state_size = state
        self.in_proj = nn.Linear(hidden, 2 * inner, bias=False)
        self.out_proj = nn.Linear(inner, hidden, bias=False)
        for suffix in ("", "_b"):
            conv = nn.Conv1d(inner, inner, config.conv_kernel, groups=inner, padding=config.conv_kernel - 1)
            setattr(self, f"conv1d{suffix}", conv)
            setattr(self, f"x_proj{suffix}", nn.Linear(inner, rank + 2 * state, bias=False))
            setattr(self, f"dt_proj{suffix}", nn.Linear(rank, inner, bias=True))
        self.A_log = nn.Parameter(torch.empty(inner, state))
        self.D = nn.Parameter(torch.empty(inner))
        self.A_b_log = nn.Parameter(torch.empty(inner, state))
        self.D_b = nn.Parameter(torch.empty(inner))

    def _ssm(
        self,
        x: torch.Tensor,
        z: torch.Tensor,
        conv: nn.Conv1d,
        x_proj: nn.Linear,
        dt_proj: nn.Linear,
        A_log: torch.Tensor,
        D: torch.Tensor,
    ) -> torch.Tensor:
        """One direction: causal conv + SiLU, selective scan, SiLU(z) gate. x, z: (batch, d_inner, L)."""
        length = x.shape[-1]
        A = -torch.exp(A_log.float())
        # causal_conv1d's kernel takes widths 2-4 only (the original's is 4; small demo models may use more)
        kernels = _mamba_kernels() if x.is_cuda and conv.kernel_size[0] <= 4 else None
        if kernels is not None:
            selective_scan_fn, causal_conv1d_fn = kernels
            x = causal_conv1d_fn(x, conv.weight.squeeze(1), conv.bias, activation="silu")
            dt, B, C = x_proj(x.transpose(1, 2)).split([self.time_step_rank, self.state_size, self.state_size], -1)
            dt = (dt @ dt_proj.weight.t()).transpose(1, 2)
            return selective_scan_fn(
                x, dt, A, B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(), D.float(), z=z,
                delta_bias=dt_proj.bias.float(), delta_softplus=True,
            )
        x = F.silu(conv(x)[..., :length])
        dt, B, C = x_proj(x.transpose(1, 2)).split([self.time_step_rank, self.state_size, self.state_size], -1)
        delta = F.softplus(dt_proj(dt).float()).transpose(1, 2)  # softplus threshold 20, as the CUDA kernel
        scan = selective_scan_exportable if torch.onnx.is_in_onnx_export() else selective_scan_blockwise
        y = scan(x.float(), delta, A, B.transpose(1, 2).float(), C.transpose(1, 2).float(), D.float())
        return (y * F.silu(z.float())).to(x.dtype)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """(batch, L, hidden) -> (batch, L, hidden)."""
        x, z = self.in_proj(hidden_states).transpose(1, 2).chunk(2, dim=1)  # each (batch, d_inner, L)
        forward = self._ssm(x, z, self.conv1d, self.x_proj, self.dt_proj, self.A_log, self.D)
        backward = self._ssm(
            x.flip(-1), z.flip(-1), self.conv1d_b, self.x_proj_b, self.dt_proj_b, self.A_b_log, self.D_b
        ).flip(-1)
        return self.out_proj((forward + backward).transpose(1, 2))


class VideoMambaBlock(GradientCheckpointingLayer):
    """Pre-norm residual block: r <- r + Mixer(RMSNorm(r)), with the residual stream r in float32."""

    def __init__(self, config: VideoMambaConfig):
        super().__init__()
        self.norm = VideoMambaRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mixer = VideoMambaMixer(config)

    def forward(self, residual: torch.Tensor) -> torch.Tensor:
        return residual + self.mixer(self.norm(residual).to(self.mixer.in_proj.weight.dtype)).float()


class VideoMambaEncoder(nn.Module):
    """VideoMamba-M: per-frame 16x16 patches + spatial and temporal position embeddings, one CLS token,
    `num_hidden_layers` bidirectional Mamba blocks and a final RMSNorm.

    Parameter names follow the original `vision_encoder.*` checkpoint keys (minus the unused `clip_decoder`).
    """

    def __init__(self, config: VideoMambaConfig):
        super().__init__()
        self.config = config
        patches = config.patches_per_side**2
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(
            config.num_channels,
            config.hidden_size,
            kernel_size=(1, config.patch_size, config.patch_size),
            stride=(1, config.patch_size, config.patch_size),
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.pos_embed = nn.Parameter(torch.zeros(1, patches + 1, config.hidden_size))
        self.temporal_pos_embedding = nn.Parameter(torch.zeros(1, config.num_frames, config.hidden_size))
        self.layers = nn.ModuleList(VideoMambaBlock(config) for _ in range(config.num_hidden_layers))
        self.norm = VideoMambaRMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(batch, T, 3, H, W) -> (batch, 1 + T * patches, hidden) float32: the CLS token, then the patch tokens
        time-major (index 1 + t * patches + p). T must be `config.num_frames`, or 1 (image mode: no temporal
        embedding, as the original's image pre-training)."""
        batch, frames = pixel_values.shape[:2]
        if frames not in (1, self.config.num_frames):
            raise ValueError(f"VideoMamba takes {self.config.num_frames} frames (or 1 image), got {frames}")
        weight = self.patch_embed.proj.weight
        x = self.patch_embed.proj(pixel_values.transpose(1, 2).to(weight.dtype))  # (batch, hidden, T, h, w)
        x = x.flatten(3).permute(0, 2, 3, 1)  # (batch, T, patches, hidden)
        x = x + self.pos_embed[:, 1:]
        if frames > 1:
            x = x + self.temporal_pos_embedding[:, :, None]
        # The CLS token gets the spatial position embedding only, and no temporal one.
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(batch, -1, -1)
        residual = torch.cat([cls, x.flatten(1, 2)], dim=1).float()
        for layer in self.layers:
            residual = layer(residual)
        return self.norm(residual)


# ---------------------------------------------------------------------------------------------------------------
# Frame scoring and token projectors
# ---------------------------------------------------------------------------------------------------------------


class FrameScorer(nn.Module):
    """Attention-based key-frame selection, per chunk of `chunk_size` consecutive frames (no parameters).

    For a chunk's tokens X ((T * P) x D, frame-major), P = softmax(X X^T / sqrt(D)) over keys; a frame's score is
    the attention its tokens receive from all queries of the chunk. The `frames_per_chunk` largest (or smallest)
    scores are kept, ties to the lower index, and returned in ascending order.

    With `precision="float16"` every step is rounded to fp16 where the original's fp16 CUDA ops round (inputs,
    logits, scaled logits, softmax, per-frame mass, sum; accumulation in fp32), reproducing its quantised scores.
    """

    def __init__(self, chunk_size: int, frames_per_chunk: int, largest: bool, precision: str):
        super().__init__()
        self.chunk_size = chunk_size
        self.frames_per_chunk = frames_per_chunk
        self.largest = largest
        self.precision = precision

    def _round(self, x: torch.Tensor) -> torch.Tensor:
        return x.half().float() if self.precision == "float16" else x

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features: (N, F, P, D) per-frame tokens of N videos of F frames.

        Returns:
            indices: (N, num_chunks * frames_per_chunk) int64, chosen frame indices in 0..F-1, ascending.
            scores: (N, F) float32 per-frame scores (each chunk's scores sum to chunk_size * P).
        """
        frames, tokens, dim = features.shape[1:]
        chunks = frames // self.chunk_size
        # The number of videos is never written as a size here: a traced size is a constant, and the ONNX batch
        # axis is dynamic.
        x = self._round(features.float()).reshape(-1, self.chunk_size * tokens, dim)
        logits = self._round(self._round(x @ x.transpose(1, 2)) / math.sqrt(dim))
        attention = self._round(logits.softmax(dim=-1))
        frame_of_token = torch.arange(self.chunk_size, device=x.device).repeat_interleave(tokens)
        one_hot = F.one_hot(frame_of_token, self.chunk_size).to(attention.dtype)
        scores = self._round(self._round(attention @ one_hot).sum(dim=1))  # (videos * chunks, chunk_size)
        # A stable sort keeps equal scores in index order, so ties go to the lower index. ONNX has no stable sort;
        # its TopK breaks ties to the lower index too.
        if torch.onnx.is_in_onnx_export():
            order = torch.topk(scores, self.frames_per_chunk, dim=-1, largest=self.largest).indices
        else:
            order = torch.sort(scores, dim=-1, descending=self.largest, stable=True).indices[:, : self.frames_per_chunk]
        offsets = torch.arange(chunks, device=x.device)[:, None] * self.chunk_size
        indices = order.sort(dim=-1).values.view(-1, chunks, self.frames_per_chunk) + offsets
        return indices.flatten(1), scores.reshape(-1, frames)


def adaptive_avg_pool2d(x: torch.Tensor, side: int, output_size: int) -> torch.Tensor:
    """`F.adaptive_avg_pool2d` of a (N, C, side, side) grid to (N, C, output_size, output_size).

    While exporting to ONNX the same averages are two products with a constant (output_size, side) averaging
    matrix: the exporter's pooling op needs the spatial sizes statically, which a trace with a dynamic batch loses.
    """
    if not torch.onnx.is_in_onnx_export():
        return F.adaptive_avg_pool2d(x, output_size)
    weights = torch.zeros(output_size, side, dtype=x.dtype, device=x.device)
    for i in range(output_size):
        start, stop = (i * side) // output_size, -(-(i + 1) * side // output_size)
        weights[i, start:stop] = 1.0 / (stop - start)
    return weights @ x @ weights.T


class ETProjector(nn.Module):
    """Efficient Token Projector (ET-Proj): FFN, then adaptive average pooling of the token grid, then a
    depthwise 3x3 convolution with a skip connection as position encoding.

    (N, side * side, in_dim) -> (N, pool_size**2, out_dim); tokens are read as a row-major side x side grid.
    """

    def __init__(self, in_dim: int, out_dim: int, pool_size: int):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, out_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(out_dim, out_dim)
        self.pool_size = pool_size
        self.pos_conv = nn.Conv2d(out_dim, out_dim, kernel_size=3, padding=1, groups=out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.fc2(self.act(self.fc1(tokens)))
        side = math.isqrt(x.shape[1])
        x = adaptive_avg_pool2d(x.view(-1, side, side, x.shape[-1]).permute(0, 3, 1, 2), side, self.pool_size)
        x = self.pos_conv(x) + x
        return x.permute(0, 2, 3, 1).flatten(1, 2)


# ---------------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class MobileVideoGPTVideoFeatures(ModelOutput):
    """Projected visual tokens of videos and the frame selection behind them.

    Args:
        visual_tokens: (N, num_frames * 144 + num_chunks * 49, H): image tokens of all frames, then video tokens.
        frame_indices: (N, num_chunks * frames_per_chunk) key frames chosen by the FrameScorer.
        frame_scores: (N, num_frames) the per-frame scores.
    """

    visual_tokens: torch.Tensor | None = None
    frame_indices: torch.Tensor | None = None
    frame_scores: torch.Tensor | None = None


@dataclass
class MobileVideoGPTModelOutputWithPast(BaseModelOutputWithPast):
    """`MobileVideoGPTModel` output: the LM's outputs plus the visual features used (for reuse across turns)."""

    video_features: MobileVideoGPTVideoFeatures | None = None
    image_features: torch.Tensor | None = None


@dataclass
class MobileVideoGPTCausalLMOutputWithPast(CausalLMOutputWithPast):
    """`CausalLMOutputWithPast` plus the visual features used and the frame selection.

    Args:
        video_features: the videos' `MobileVideoGPTVideoFeatures` (visual tokens, frame indices and scores), to
            pass back as `video_features=` for a follow-up turn without re-encoding.
        image_features: (N_images, 144, H) projected image tokens, reusable as `image_features=`.
    """

    video_features: MobileVideoGPTVideoFeatures | None = None
    image_features: torch.Tensor | None = None


def _build_clip_vision(config) -> nn.Module:
    """CLIPVisionModel's transformer with the same parameter names under every transformers version.

    transformers 4.x wraps the transformer as `CLIPVisionModel.vision_model`; 5.x made `CLIPVisionModel` the
    transformer itself. Keeping the inner module makes the names `embeddings.*`, `pre_layrnorm.*`,
    `encoder.layers.*`, `post_layernorm.*` in both, so a checkpoint saved by one loads fully in the other.
    """
    model = CLIPVisionModel(config)
    return getattr(model, "vision_model", model)


class MobileVideoGPTPreTrainedModel(PreTrainedModel):
    config_class = MobileVideoGPTConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    input_modalities = ("image", "video", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["Qwen2DecoderLayer", "CLIPEncoderLayer", "VideoMambaBlock"]
    # The original runs both encoders in float32 whatever the LM's dtype.
    _keep_in_fp32_modules_strict = ["image_encoder", "video_encoder"]
    _skip_keys_device_placement = CACHE_KWARG
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flash_attn_2 = True
    _supports_cache_class = True
    _supports_static_cache = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)  # linear / conv / embedding / norms / rotary buffers
        if isinstance(module, VideoMambaMixer):
            state = module.A_log.shape[1]
            a_log = torch.log(torch.arange(1, state + 1, dtype=torch.float32)).expand_as(module.A_log)
            for a, d, dt_proj in ((module.A_log, module.D, module.dt_proj), (module.A_b_log, module.D_b, module.dt_proj_b)):
                _init_copy(a, a_log)
                init.ones_(d)
                # Mamba's init: time steps log-uniform in [1e-3, 1e-1], bias = softplus^-1(step).
                step = torch.exp(torch.empty_like(dt_proj.bias).uniform_(math.log(1e-3), math.log(1e-1)))
                _init_copy(dt_proj.bias, step + torch.log(-torch.expm1(-step)))
                init.normal_(dt_proj.weight, std=module.time_step_rank**-0.5)
        elif isinstance(module, VideoMambaEncoder):
            for parameter in (module.cls_token, module.pos_embed, module.temporal_pos_embedding):
                init.normal_(parameter, std=0.02)
        elif type(module).__name__ == "CLIPVisionEmbeddings":
            init.normal_(module.class_embedding, std=module.embed_dim**-0.5)
            _init_copy(module.position_ids, torch.arange(module.num_positions).expand((1, -1)))


def _init_copy(tensor: torch.Tensor, value: torch.Tensor) -> None:
    # transformers 5.x initialises after loading and its `init` functions skip loaded tensors; 4.x
    # initialises before loading, so a plain copy is right there.
    if hasattr(init, "copy_"):
        init.copy_(tensor, value)
    else:
        tensor.copy_(value)


class MobileVideoGPTModel(MobileVideoGPTPreTrainedModel):
    """The encoders, frame scorer, projectors and the Qwen2 decoder (no LM head)."""

    def __init__(self, config: MobileVideoGPTConfig):
        super().__init__(config)
        self.image_encoder = _build_clip_vision(config.vision_config)
        self.video_encoder = VideoMambaEncoder(config.video_config)
        self.frame_scorer = FrameScorer(
            config.chunk_size, config.frames_per_chunk, config.frame_selection == "largest",
            config.frame_scoring_precision,
        )
        text_width = config.text_config.hidden_size
        self.image_projector = ETProjector(config.vision_config.hidden_size, text_width, config.image_pool_size)
        self.video_projector = ETProjector(config.video_config.hidden_size, text_width, config.video_pool_size)
        self.language_model = Qwen2Model(config.text_config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def _projector_dtype(self) -> torch.dtype:
        return self.image_projector.fc1.weight.dtype

    def _clip_patch_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, 224, 224) -> (N, 196, 768): CLIP hidden state `vision_feature_layer`, CLS dropped.

        Layers after the selected one are not run (their output is unused).
        """
        clip = self.image_encoder
        hidden = clip.embeddings(pixel_values.to(clip.embeddings.patch_embedding.weight.dtype))
        hidden = clip.pre_layrnorm(hidden)
        layers = clip.encoder.layers
        for layer in layers[: len(layers) + 1 + self.config.vision_feature_layer]:
            hidden = layer(hidden, None, None) if _CLIP_LAYER_TAKES_CAUSAL_MASK else layer(hidden, None)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        return hidden[:, 1:]

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Single images (spec 6.5): (N, 3, 224, 224) CLIP-preprocessed -> (N, 144, H) image tokens."""
        features = self._clip_patch_features(pixel_values).to(self._projector_dtype())
        return self.image_projector(features)

    def get_video_features(
        self, pixel_values_videos: torch.Tensor, pixel_values_context: torch.Tensor
    ) -> MobileVideoGPTVideoFeatures:
        """Encode videos into their visual tokens.

        Args:
            pixel_values_videos: (N, F, 3, 224, 224) frames preprocessed for VideoMamba (ImageNet normalisation).
            pixel_values_context: (N, F, 3, 224, 224) the same frames preprocessed for CLIP.
        """
        cfg = self.config
        frames = pixel_values_context.shape[1]
        if frames != cfg.num_frames or pixel_values_videos.shape[:2] != pixel_values_context.shape[:2]:
            raise ValueError(
                f"expected both pixel_values_videos and pixel_values_context as (N, {cfg.num_frames}, 3, H, W) with "
                f"the same N; got {tuple(pixel_values_videos.shape)} and {tuple(pixel_values_context.shape)}"
            )
        clip = self._clip_patch_features(pixel_values_context.flatten(0, 1))  # (N * F, 196, 768)
        # The original casts CLIP features to the LM dtype before scoring and projecting.
        clip = clip.to(self._projector_dtype())
        frame_indices, frame_scores = self.frame_scorer(clip.unflatten(0, (-1, frames)))

        # All key frames of a video (chunk-major, ascending) go through VideoMamba as ONE clip: a frame's
        # temporal position is its rank in the selection, not its time in the video.
        # The number of videos is never written as a size (-1, gather): traced, it would be a constant in the ONNX
        # graph, whose batch axis is dynamic.
        index = frame_indices[:, :, None, None, None].expand(-1, -1, *pixel_values_videos.shape[2:])
        key_frames = pixel_values_videos.gather(1, index)
        side = cfg.video_config.patches_per_side
        video = self.video_encoder(key_frames)[:, 1:]  # (N, K_total * side**2, 576), CLS dropped
        video = video.reshape(-1, side, side, video.shape[-1]).permute(0, 3, 1, 2)
        video = adaptive_avg_pool2d(video, side, cfg.video_pool_size).flatten(2).transpose(1, 2)  # (N * K_total, 49, 576)
        # Quirk kept from the original: a chunk's 4 key frames x 49 tokens are concatenated and the video
        # ET-Proj reads those 196 tokens as ONE 14x14 grid, so its pooling and convolution mix frames.
        chunk_tokens = video.reshape(-1, cfg.video_tokens_per_chunk_in, video.shape[-1])  # (N * num_chunks, 196, 576)
        video_tokens = self.video_projector(chunk_tokens.to(self._projector_dtype()))
        image_tokens = self.image_projector(clip)
        visual_tokens = torch.cat(
            [image_tokens.reshape(-1, frames * image_tokens.shape[1], image_tokens.shape[-1]),
             video_tokens.reshape(-1, cfg.num_chunks * video_tokens.shape[1], video_tokens.shape[-1])],
            dim=1,
        )
        return MobileVideoGPTVideoFeatures(visual_tokens, frame_indices, frame_scores)

    def _scatter_placeholders(
        self, inputs_embeds: torch.Tensor, input_ids: torch.Tensor, token_id: int, features: torch.Tensor, name: str
    ) -> torch.Tensor:
        """Write `features` (N, n, H) over the `token_id` positions of `input_ids`, in order."""
        mask = input_ids == token_id
        if int(mask.sum()) != features.shape[0] * features.shape[1]:
            raise ValueError(
                f"The prompt has {int(mask.sum())} {name} placeholder tokens (id {token_id}) but the {name} input "
                f"gives {features.shape[0]} x {features.shape[1]} = {features.shape[0] * features.shape[1]} visual "
                f"tokens. Build the prompt with MobileVideoGPTProcessor, which expands each {name} to exactly that many."
            )
        features = features.to(inputs_embeds.device, inputs_embeds.dtype).reshape(-1, inputs_embeds.shape[-1])
        return inputs_embeds.masked_scatter(mask[..., None], features)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        pixel_values_context: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
        video_features: MobileVideoGPTVideoFeatures | torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values=None,
        cache=None,
        inputs_embeds: torch.Tensor | None = None,
        video_metadata: list[dict] | None = None,
        **kwargs,
    ) -> MobileVideoGPTModelOutputWithPast:
        """Encode the visual inputs, write them over their placeholders and run the Qwen2 decoder.

        Args:
            input_ids: (batch, seq) token ids; a video occupies `config.visual_tokens_per_video` consecutive
                `video_token_id` placeholders, an image `image_tokens_per_frame` `image_token_id` placeholders
                (the processor expands them). Visual tokens fill placeholders in batch-then-position order.
            pixel_values: (N_images, 3, 224, 224) CLIP-preprocessed images.
            pixel_values_videos / pixel_values_context: (N_videos, F, 3, 224, 224) a video's frames preprocessed
                for VideoMamba / for CLIP.
            image_features / video_features: features from an earlier call (`get_image_features`,
                `get_video_features`, or a previous output's fields) used instead of pixels: a follow-up turn
                about the same video skips both encoders. `video_features` may be the
                `MobileVideoGPTVideoFeatures` or its `visual_tokens` tensor (N_videos, 2402, H).
            video_metadata: the processor's per-video frame indices and timestamps; accepted and ignored, so
                `model(**processor(...))` and `model.generate(**processor(...))` work.
            Other args as Qwen2Model (attention_mask (batch, seq) with 0 on padding, past_key_values, ...);
                `cache` is the same KV cache under the name transformers >= 5.24 gives it.
        Raises:
            ValueError: when the number of placeholders differs from the number of visual tokens given.
        """
        past_key_values = cache if cache is not None else past_key_values
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds")
        if pixel_values is not None and image_features is not None:
            raise ValueError("Pass either pixel_values or image_features, not both")
        if pixel_values_videos is not None and video_features is not None:
            raise ValueError("Pass either pixel_values_videos (+ pixel_values_context) or video_features, not both")

        if inputs_embeds is not None:
            if any(v is not None for v in (pixel_values, pixel_values_videos, image_features, video_features)):
                raise ValueError("Visual inputs need input_ids (to find their placeholders), not inputs_embeds")
        else:
            inputs_embeds = self.get_input_embeddings()(input_ids)
            if pixel_values is not None:
                image_features = self.get_image_features(pixel_values)
            if image_features is not None:
                inputs_embeds = self._scatter_placeholders(
                    inputs_embeds, input_ids, self.config.image_token_id, image_features, "image"
                )
            if pixel_values_videos is not None or pixel_values_context is not None:
                if pixel_values_videos is None or pixel_values_context is None:
                    raise ValueError("A video needs both pixel_values_videos (VideoMamba) and pixel_values_context (CLIP)")
                video_features = self.get_video_features(pixel_values_videos, pixel_values_context)
            if video_features is not None:
                tokens = video_features.visual_tokens if isinstance(video_features, MobileVideoGPTVideoFeatures) else video_features
                inputs_embeds = self._scatter_placeholders(
                    inputs_embeds, input_ids, self.config.video_token_id, tokens, "video"
                )

        outputs = self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            **{CACHE_KWARG: past_key_values},
            **kwargs,
        )
        return MobileVideoGPTModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state,
            **{CACHE_KWARG: getattr(outputs, CACHE_KWARG)},
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            video_features=video_features if isinstance(video_features, MobileVideoGPTVideoFeatures) else None,
            image_features=image_features,
        )


# transformers 4.x CLIP layers take (hidden, attention_mask, causal_attention_mask) and return a tuple;
# 5.x take (hidden, attention_mask, **kwargs) and return the tensor.
_CLIP_LAYER_TAKES_CAUSAL_MASK = "causal_attention_mask" in inspect.signature(CLIPEncoderLayer.forward).parameters


_GENERATE_PASSES_FIRST_ITERATION = "is_first_iteration" in inspect.signature(
    GenerationMixin.prepare_inputs_for_generation
).parameters


class MobileVideoGPTForConditionalGeneration(MobileVideoGPTPreTrainedModel, GenerationMixin):
    """Mobile-VideoGPT with its LM head: `forward` for training (loss on `labels`), `generate` for answers.

    Example:
        >>> processor = AutoProcessor.from_pretrained(repo, trust_remote_code=True)
        >>> model = AutoModel.from_pretrained(repo, trust_remote_code=True)
        >>> messages = [{"role": "user", "content": [{"type": "video", "path": "clip.mp4"},
        ...                                          {"type": "text", "text": "What happens?"}]}]
        >>> inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
        ...                                        return_dict=True, return_tensors="pt")
        >>> out = model.generate(**inputs, max_new_tokens=64)
        >>> processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    """

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}

    def __init__(self, config: MobileVideoGPTConfig):
        super().__init__(config)
        self.model = MobileVideoGPTModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.lm_head = value

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model.get_image_features(pixel_values)

    def get_video_features(
        self, pixel_values_videos: torch.Tensor, pixel_values_context: torch.Tensor
    ) -> MobileVideoGPTVideoFeatures:
        return self.model.get_video_features(pixel_values_videos, pixel_values_context)

    def _get_logits_processor(self, generation_config, *args, **kwargs):
        """As GenerationMixin's, except that a repetition penalty sees only the generated tokens (spec Q-19): the
        original generates from `inputs_embeds`, so its penalty never counts the prompt."""
        processors = super()._get_logits_processor(generation_config, *args, **kwargs)
        prompt_length = kwargs.get("input_ids_seq_length", args[0] if args else None)
        for processor in processors:
            if isinstance(processor, RepetitionPenaltyLogitsProcessor) and prompt_length:
                processor.prompt_ignore_length = prompt_length
        return processors

    def prepare_inputs_for_generation(self, input_ids: torch.LongTensor, **kwargs) -> dict:
        """Visual inputs go to the first forward of `generate` only (the prompt); decoding steps reuse the cache."""
        if _GENERATE_PASSES_FIRST_ITERATION:  # transformers 5.x
            first = kwargs.get("is_first_iteration", False)
        else:  # transformers 4.x
            cache_position = kwargs.get("cache_position")
            first = cache_position is None or int(cache_position[0]) == 0
        model_inputs = super().prepare_inputs_for_generation(input_ids, **kwargs)
        if not first:
            for key in ("pixel_values", "pixel_values_videos", "pixel_values_context", "image_features", "video_features"):
                model_inputs.pop(key, None)
        return model_inputs

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        pixel_values_context: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
        video_features: MobileVideoGPTVideoFeatures | torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values=None,
        cache=None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        video_metadata: list[dict] | None = None,
        **kwargs,
    ) -> MobileVideoGPTCausalLMOutputWithPast:
        """Args as `MobileVideoGPTModel.forward`, plus `labels` (batch, seq): token ids to predict, -100 where no
        loss is taken (the processor marks everything but the answers); the loss is the mean next-token cross
        entropy. Logits: (batch, seq or logits_to_keep, vocab)."""
        outputs = self.model(
            input_ids=input_ids,
            pixel_values=pixel_values,
            pixel_values_videos=pixel_values_videos,
            pixel_values_context=pixel_values_context,
            image_features=image_features,
            video_features=video_features,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            cache=cache,
            inputs_embeds=inputs_embeds,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, keep, :])
        loss = None
        if labels is not None:
            loss = self.loss_function(logits, labels, vocab_size=self.config.text_config.vocab_size, **kwargs)
        return MobileVideoGPTCausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            **{CACHE_KWARG: getattr(outputs, CACHE_KWARG)},
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            video_features=outputs.video_features,
            image_features=outputs.image_features,
        )


MobileVideoGPTConfig.register_for_auto_class()
MobileVideoGPTForConditionalGeneration.register_for_auto_class("AutoModelForImageTextToText")

__all__ = [
    "ETProjector",
    "FrameScorer",
    "MobileVideoGPTForConditionalGeneration",
    "MobileVideoGPTModel",
    "MobileVideoGPTPreTrainedModel",
    "VideoMambaEncoder",
]
