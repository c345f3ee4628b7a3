"""Mobile-VideoGPT against its peers on one machine, and against the machine's physical limits.

    python benchmarks/run.py            # everything (~25 min on 2 cores), writes benchmarks/RESULTS.md + PNG + JSON
    python benchmarks/run.py --quick    # the 0.5B model (fp32, int8, follow-up), SmolVLM2 and LLaVA-OV at 16 frames
    python benchmarks/run.py --cases mvgpt-0.5b-fp32,smolvlm2-500m-fps   # some cases; merged into results.json

Every model answers the same generated 10 s clip (240 frames, 320x240, 24 fps) with the same question, greedy, 64
new tokens with EOS ignored (`min_new_tokens`), at its real size with random weights (configs below, from the
published config.json files), fp32, sdpa attention, 2 torch threads, each case in a fresh process (so peak memory
is its own). Mobile-VideoGPT reads the file through its own processor; the peers' processors need torchvision, so
their frames are decoded by the same decoder (decord) and resized / normalised here with torch, as their
processors do, and their prompts are built with the placeholder counts their transformers code expects.

Figures per case: load (building the model), decode+preprocess, vision (encoders + projectors, timed inside
`generate`), time to first token (from the video file), decode tokens/s (tokens 2..64), end-to-end tokens/s
(64 / everything from the file), peak RSS, visual tokens, parameters. The physical limits are measured in their
own process: weight-streaming bandwidth (a GEMV over a 1 GiB fp32 matrix: what decoding does) and matmul
throughput (LM-shaped GEMMs); decode bound = bandwidth / weight bytes per token, prefill bound = FLOPs /
throughput. On a CUDA machine the same cases run in fp16/bf16 with and without the mamba kernels, with a static
cache and torch.compile (see `cuda_cases`).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
NEW_TOKENS = 64
QUESTION = "What is happening in this video? Describe the moving shapes and their colours."
VIDEO = dict(num_frames=240, width=320, height=240, fps=24.0)  # 10 s
SCRATCH = Path(tempfile.gettempdir()) / "mvgpt-bench"

# --- published sizes ------------------------------------------------------------------------------------------
# llava-hf/llava-onevision-qwen2-0.5b-ov-hf, config.json: SigLIP so400m (26 layers kept, last hidden state, "full"
# features) + 2-layer GELU projector + Qwen2-0.5B (vocab 152000, tied head); videos at 384x384, 729 patches
# bilinearly pooled to 14x14 = 196 tokens per frame, plus one newline token per video.
LLAVA_OV_05B = dict(
    vision_config=dict(model_type="siglip_vision_model", hidden_size=1152, intermediate_size=4304, num_hidden_layers=26,
                       num_attention_heads=16, patch_size=14, image_size=384, vision_use_head=False),
    text_config=dict(model_type="qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                     num_attention_heads=14, num_key_value_heads=2, vocab_size=152000, max_position_embeddings=32768,
                     rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False),
    image_token_index=151646, video_token_index=151647, projector_hidden_act="gelu",
    vision_feature_select_strategy="full", vision_feature_layer=-1, tie_word_embeddings=True,
    image_grid_pinpoints=[[384, 384]], vision_aspect_ratio="anyres_max_9",
)
# HuggingFaceTB/SmolVLM2-500M-Video-Instruct, config.json: SigLIP base-patch16-512 + pixel shuffle x4 (1024 patches
# -> 64 tokens per frame) + SmolLM2-360M (Llama, 32 layers, 960 wide, untied head); video frames at 512 (longest
# edge), sampled at 1 fps up to 64 frames.
SMOLVLM2_500M = dict(
    vision_config=dict(model_type="smolvlm_vision", hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                       num_attention_heads=12, patch_size=16, image_size=512),
    text_config=dict(model_type="llama", hidden_size=960, intermediate_size=2560, num_hidden_layers=32,
                     num_attention_heads=15, num_key_value_heads=5, head_dim=64, vocab_size=49280,
                     max_position_embeddings=8192, rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=False),
    scale_factor=4, image_token_id=49190, tie_word_embeddings=False, vocab_size=49280,
)
PUBLISHED_PARAMS = {"llava-ov-0.5b": 0.894e9, "smolvlm2-500m": 0.507e9, "mvgpt-0.5b": None, "mvgpt-1.5b": None}

CASES = {
    # name: (runner, kwargs)
    "limits": ("limits", {}),
    "mvgpt-0.5b-fp32": ("ours", dict(preset="0.5b")),
    "mvgpt-0.5b-int8": ("ours", dict(preset="0.5b", int8=True)),
    "mvgpt-0.5b-chat": ("chat", dict(preset="0.5b")),
    "mvgpt-0.5b-batch4": ("batch", dict(preset="0.5b", batch=4)),
    "mvgpt-1.5b-fp32": ("ours", dict(preset="1.5b")),
    "mvgpt-1.5b-int8": ("ours", dict(preset="1.5b", int8=True)),
    "llava-ov-0.5b-32f": ("llava", dict(frames=32)),
    "llava-ov-0.5b-16f": ("llava", dict(frames=16)),
    "smolvlm2-500m-fps": ("smolvlm", dict(frames=None)),
    "smolvlm2-500m-16f": ("smolvlm", dict(frames=16)),
    "scan": ("scan", {}),
    "profile": ("profile", {}),
}
QUICK = ["limits", "mvgpt-0.5b-fp32", "mvgpt-0.5b-int8", "mvgpt-0.5b-chat", "smolvlm2-500m-fps", "llava-ov-0.5b-16f"]
FULL = ["limits", "scan", "mvgpt-0.5b-fp32", "mvgpt-0.5b-int8", "mvgpt-0.5b-chat", "smolvlm2-500m-fps",
        "smolvlm2-500m-16f", "llava-ov-0.5b-16f", "llava-ov-0.5b-32f", "mvgpt-1.5b-fp32", "mvgpt-1.5b-int8",
        "mvgpt-0.5b-batch4", "profile"]


# --- measurement helpers --------------------------------------------------------------------------------------
def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class TokenClock:
    """A stopping criterion that never stops: it notes when each new token exists (after its forward)."""

    def __init__(self):
        self.times: list[float] = []

    def __call__(self, input_ids, scores, **kwargs):
        sync()
        self.times.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


class RSSSampler:
    """Peak resident memory of this process, sampled every 20 ms between start() and stop()."""

    def __init__(self):
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            self._stop.wait(0.02)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())
        return self.peak


def time_calls(obj, name: str, sink: list) -> None:
    """Replace obj.name by a wrapper adding each call's seconds to `sink` (instance attribute, so self.name() finds it)."""
    original = getattr(obj, name)

    @functools.wraps(original)  # generate() reads the signature to pre-encode pixels (transformers 5.x)
    def wrapped(*args, **kwargs):
        sync()
        start = time.perf_counter()
        out = original(*args, **kwargs)
        sync()
        sink.append(time.perf_counter() - start)
        return out

    setattr(obj, name, wrapped)


def release_freed_memory() -> None:
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # shared (tied) tensors once


def warm_up(model, vocab_low: int = 100) -> None:
    """A 2-token text-only generate, so one-time kernel set-up is not charged to the measured answer."""
    ids = torch.arange(vocab_low, vocab_low + 16, device=model.device)[None]
    with torch.no_grad():
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=2, min_new_tokens=2,
                       do_sample=False)


def timed_generate(model, inputs: dict, vision_sink: list, new_tokens: int, **extra) -> dict:
    """One greedy answer of exactly `new_tokens` tokens; times of the first and each later token."""
    clock = TokenClock()
    sync()
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                             stopping_criteria=[clock], return_dict_in_generate=True, output_scores=True, **extra)
    first, last = clock.times[0] - start, clock.times[-1] - start
    vision = sum(vision_sink)
    prompt = inputs["input_ids"].shape[1]
    return {
        "vision_s": vision,
        "prefill_s": first - vision,  # the prompt's forward (and the first token's selection)
        "generate_to_first_s": first,
        "generate_s": last,
        "decode_tokens_per_s": (len(clock.times) - 1) / (last - first) if len(clock.times) > 1 else 0.0,
        "new_tokens": len(clock.times),
        "prompt_tokens": prompt,
        "tokens": out.sequences[0, prompt:].tolist(),
        "_scores0": out.scores[0][0].float().cpu(),
        "_sequences": out.sequences,
    }


def generate_measured(model, inputs: dict, sink: list, new_tokens: int, sampler, device: str, static_cache: bool,
                      compile: bool) -> dict:
    """`timed_generate` (with a static cache, compiled or not, when asked) plus the peak memory of the answer."""
    extra = {"cache_implementation": "static", "disable_compile": not compile} if static_cache else {}
    result = timed_generate(model, inputs, sink, new_tokens, **extra)
    result["peak_rss_mib"] = sampler.stop() / 2**20
    if device == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def finish(result: dict, preprocess: float) -> dict:
    result["preprocess_s"] = preprocess
    result["ttft_s"] = preprocess + result.pop("generate_to_first_s")
    result["end_to_end_s"] = preprocess + result["generate_s"]
    result["end_to_end_tokens_per_s"] = result["new_tokens"] / result["end_to_end_s"]
    result["max_rss_process_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {k: v for k, v in result.items() if not k.startswith("_")}


# --- physical limits ------------------------------------------------------------------------------------------
def decode_weight_bytes(model) -> int:
    """Bytes of weights one decoding step must read: every LM layer's weights, the final norm, the LM head, and one
    embedding row (the lookup reads a row, not the table). A head tied to the embeddings is counted once, as the
    head. Dynamically quantized linears count their int8 weight (1 byte per entry) and fp32 bias."""
    qlinear = torch.ao.nn.quantized.dynamic.Linear
    language_model, head = model.model.language_model, model.lm_head
    embed = language_model.get_input_embeddings()
    total = embed.weight.shape[1] * embed.weight.element_size()
    skip = {id(embed.weight)}
    for module in list(language_model.modules()) + [head]:
        if isinstance(module, qlinear):
            weight, bias = module._packed_params._weight_bias()
            total += weight.numel() * weight.element_size() + (bias.numel() * 4 if bias is not None else 0)
            continue
        for param in module.parameters(recurse=False):
            if id(param) not in skip or module is head:
                total += param.numel() * param.element_size()
    return total


def kv_bytes_per_token(text_config, context: int, bytes_per_value: int = 4) -> int:
    """Bytes of KV cache one decoding step reads at `context` cached tokens."""
    head_dim = getattr(text_config, "head_dim", None) or text_config.hidden_size // text_config.num_attention_heads
    return 2 * text_config.num_hidden_layers * text_config.num_key_value_heads * head_dim * context * bytes_per_value


def prefill_flops(text_config, tokens: int) -> int:
    """Matmul FLOPs of one prompt's prefill: 2 x weights x tokens for the layers' linears, causal attention (QK^T
    and AV over the lower triangle: 2 x tokens^2 x width per layer) and the LM head on the last position only."""
    h, layers = text_config.hidden_size, text_config.num_hidden_layers
    head_dim = getattr(text_config, "head_dim", None) or h // text_config.num_attention_heads
    q_width, kv_width = text_config.num_attention_heads * head_dim, text_config.num_key_value_heads * head_dim
    linear = h * q_width + 2 * h * kv_width + q_width * h + 3 * h * text_config.intermediate_size
    attention = 2 * tokens * tokens * q_width
    return layers * (2 * linear * tokens + attention) + 2 * h * text_config.vocab_size


def run_limits(device: str = "cpu", **_) -> dict:
    def median_time(fn, repeats=7):
        fn()
        times = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    if device == "cuda":  # GPU: half-precision GEMV over 2 GiB (streaming) and a large GEMM (throughput)
        out = {}
        with torch.no_grad():
            for dtype in (torch.float16, torch.bfloat16):
                weight = torch.randn(32768, 32768, device=device, dtype=dtype)
                x = torch.randn(1, 32768, device=device, dtype=dtype)
                t = median_time(lambda: torch.nn.functional.linear(x, weight))
                out[f"gemv_{str(dtype)[6:]}_GBps"] = weight.numel() * 2 / t / 1e9
                a, b = torch.randn(8192, 8192, device=device, dtype=dtype), torch.randn(8192, 8192, device=device, dtype=dtype)
                t = median_time(lambda: a @ b)
                out[f"gemm_{str(dtype)[6:]}_GFLOPs"] = 2 * 8192**3 / t / 1e9
                del weight, a, b
        out["bandwidth_GBps"] = max(out["gemv_float16_GBps"], out["gemv_bfloat16_GBps"])
        return out
    out = {}
    with torch.no_grad():
        rows, cols = 16384, 16384  # 1 GiB fp32: far beyond the caches
        weight = torch.empty(rows, cols).uniform_(-0.05, 0.05)
        x = torch.randn(1, cols)
        t = median_time(lambda: torch.nn.functional.linear(x, weight))
        out["gemv_fp32_GBps"] = weight.numel() * 4 / t / 1e9
        t = median_time(lambda: weight.sum())
        out["read_sum_fp32_GBps"] = weight.numel() * 4 / t / 1e9
        linear = nn.Linear(cols, rows, bias=False)
        linear.weight.data = weight
        holder = nn.ModuleDict({"l": linear})
        torch.ao.quantization.quantize_dynamic(holder, {nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig},
                                               inplace=True)
        del weight, linear
        q = holder["l"]
        t = median_time(lambda: q(x))
        out["gemv_int8_dynamic_GBps"] = rows * cols / t / 1e9
        del holder, q
        # LM-shaped GEMMs (Qwen2-0.5B MLP up-projection, 2048 tokens) and a square one.
        best = 0.0
        for m, k, n in ((2048, 896, 4864), (2048, 4864, 896), (2048, 2048, 2048)):
            a, b = torch.randn(m, k), torch.randn(n, k)
            t = median_time(lambda: torch.nn.functional.linear(a, b), repeats=5)
            out[f"gemm_fp32_{m}x{k}x{n}_GFLOPs"] = 2 * m * k * n / t / 1e9
            best = max(best, 2 * m * k * n / t / 1e9)
        out["gemm_fp32_GFLOPs"] = best
        lin = nn.ModuleDict({"l": nn.Linear(896, 4864, bias=False)})
        torch.ao.quantization.quantize_dynamic(lin, {nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig},
                                               inplace=True)
        a = torch.randn(2048, 896)
        t = median_time(lambda: lin["l"](a), repeats=5)
        out["gemm_int8_dynamic_GFLOPs"] = 2 * 2048 * 896 * 4864 / t / 1e9
    out["bandwidth_GBps"] = max(out["gemv_fp32_GBps"], out["read_sum_fp32_GBps"])
    return out


# --- our model ------------------------------------------------------------------------------------------------
def build_ours(preset: str, int8: bool = False, dtype=torch.float32, device="cpu"):
    from mobilevideogpt.modeling import MobileVideoGPTConfig, MobileVideoGPTForConditionalGeneration
    from mobilevideogpt.processing import MobileVideoGPTProcessor, default_image_processor
    from mobilevideogpt.tiny import build_tiny_tokenizer

    torch.manual_seed(0)
    start = time.perf_counter()
    config = MobileVideoGPTConfig.from_preset(preset)
    config.text_config._attn_implementation = "sdpa"
    model = MobileVideoGPTForConditionalGeneration(config).eval()
    # The real Qwen2 tokenizer cannot be downloaded here: the tiny one's ids stand in (the vocabulary covers them),
    # which changes nothing but the few question tokens.
    tokenizer = build_tiny_tokenizer()
    model.config.video_token_id = tokenizer.convert_tokens_to_ids("<|video_pad|>")
    params = count_params(model)
    if int8:
        from mobilevideogpt.quantize import quantize_int8

        quantize_int8(model)
        release_freed_memory()  # the replaced fp32 linears: a deployment would load int8 weights directly
    if device != "cpu" or dtype != torch.float32:
        model.to(device=device, dtype=dtype)
        model.model.image_encoder.float()  # the encoders stay fp32, as from_pretrained keeps them
        model.model.video_encoder.float()
    load = time.perf_counter() - start
    processor = MobileVideoGPTProcessor(default_image_processor(), tokenizer)
    return model, processor, params, load


def ours_inputs(processor, video: str, device="cpu") -> dict:
    messages = [{"role": "user", "content": [{"type": "video", "path": video}, {"type": "text", "text": QUESTION}]}]
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           return_tensors="pt")
    inputs.pop("video_metadata", None)
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in inputs.items()}


def run_ours(video: str, preset: str, int8: bool = False, new_tokens: int = NEW_TOKENS, device="cpu",
             dtype=torch.float32, kernels: bool = True, static_cache: bool = False, compile: bool = False) -> dict:
    from mobilevideogpt.modeling import modeling_mobilevideogpt

    if not kernels:
        modeling_mobilevideogpt._mamba_kernels = lambda: None
    model, processor, params, load = build_ours(preset, int8, dtype, device)
    warm_up(model)
    sink: list = []
    time_calls(model.model, "get_video_features", sink)
    sampler = RSSSampler().start()
    start = time.perf_counter()
    inputs = ours_inputs(processor, video, device)
    preprocess = time.perf_counter() - start
    result = generate_measured(model, inputs, sink, new_tokens, sampler, device, static_cache, compile)
    text = model.config.text_config
    result.update(
        load_s=load, params=params, visual_tokens=int(model.config.visual_tokens_per_video),
        weight_bytes_per_token=decode_weight_bytes(model) if device == "cpu" else None,
        kv_bytes_per_token=kv_bytes_per_token(text, result["prompt_tokens"] + new_tokens // 2),
        prefill_flops=prefill_flops(text, result["prompt_tokens"]),
        weight_checksum=float(model.model.language_model.embed_tokens.weight.detach()[:64].double().sum()),
    )
    scores0, sequences = result["_scores0"], result["_sequences"]
    SCRATCH.mkdir(exist_ok=True)
    tag = f"mvgpt-{preset}"
    if not int8 and device == "cpu":
        torch.save({"scores0": scores0, "sequences": sequences.cpu(), "checksum": result["weight_checksum"]},
                   SCRATCH / f"{tag}-fp32.pt")
    elif int8:
        result["int8_drift"] = int8_drift(model, inputs, sink, scores0, SCRATCH / f"{tag}-fp32.pt", result)
    return finish(result, preprocess)


def int8_drift(model, inputs: dict, sink: list, scores0: torch.Tensor, reference: Path, result: dict) -> dict | None:
    """int8 vs the fp32 model built from the same seed: first-token logits, free-running greedy tokens, and
    teacher-forced top-1 agreement along the fp32 answer (one int8 forward over prompt + fp32 answer)."""
    if not reference.exists():
        return None
    ref = torch.load(reference, weights_only=True)
    if abs(ref["checksum"] - result["weight_checksum"]) > 1e-6:
        return {"error": "the fp32 reference was built from other weights"}
    a, b = ref["scores0"], scores0
    finite = torch.isfinite(a) & torch.isfinite(b)
    a, b = a[finite], b[finite]
    sequences = ref["sequences"]
    prompt = inputs["input_ids"].shape[1]
    fp32_tokens = sequences[0, prompt:].tolist()
    sink.clear()
    with torch.no_grad():
        forced = dict(inputs, input_ids=sequences, attention_mask=torch.ones_like(sequences))
        logits = model(**forced, logits_to_keep=sequences.shape[1] - prompt + 1).logits[0, :-1]
    forced_agree = float((logits.argmax(-1) == sequences[0, prompt:]).float().mean())
    same_prefix = next((i for i, (x, y) in enumerate(zip(fp32_tokens, result["tokens"])) if x != y), len(fp32_tokens))
    return {
        "first_logits_max_rel": float((a - b).abs().max() / a.abs().max()),
        "first_logits_cosine": float(torch.nn.functional.cosine_similarity(a, b, dim=0)),
        "first_token_same": bool(a.argmax() == b.argmax()),
        "greedy_same_prefix": same_prefix,
        "greedy_tokens_equal": sum(x == y for x, y in zip(fp32_tokens, result["tokens"])),
        "teacher_forced_top1_agreement": forced_agree,
    }


def run_chat(video: str, preset: str, new_tokens: int = NEW_TOKENS) -> dict:
    """A first question and a follow-up through VideoChat; the follow-up checked against full recomputation."""
    from mobilevideogpt.chat import VideoChat

    model, processor, params, load = build_ours(preset)
    warm_up(model)
    chat = VideoChat(model, processor, video)
    questions = (QUESTION, "What colour is the square at the end of the clip?")
    for question in questions:
        for _ in chat.ask(question, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False):
            pass
    turns = [{"seconds_to_first_token": t.seconds_to_first_token, "tokens_per_second": t.tokens_per_second,
              "prefilled_tokens": t.prefilled_tokens, "new_tokens": t.new_tokens} for t in chat.turns]
    # Full recomputation of turn 2: the whole conversation as one prompt, the video features reused.
    prompt_length = len(chat.ids) - chat.turns[-1].new_tokens
    ids = torch.tensor([chat.ids[:prompt_length]])
    sink = [0.0]
    recomputed = timed_generate(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                                        "video_features": chat.features}, sink, new_tokens)
    cached_tokens = chat.ids[prompt_length:]
    return {
        "load_s": load, "params": params, "turns": turns,
        "follow_up_recomputed": {"seconds_to_first_token": recomputed["prefill_s"], "prompt_tokens": prompt_length},
        "follow_up_tokens_equal_recomputation": cached_tokens == recomputed["tokens"],
        "follow_up_tokens_matching": sum(x == y for x, y in zip(cached_tokens, recomputed["tokens"])),
        "max_rss_process_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_batch(video: str, preset: str, batch: int = 4, new_tokens: int = NEW_TOKENS) -> dict:
    """`batch` clips answered one after another vs in one batch (same prompts, so no padding)."""
    from mobilevideogpt.tiny import write_video

    model, processor, params, load = build_ours(preset)
    warm_up(model)
    videos = [video] + [
        str(write_video(SCRATCH / f"clip-{i}.mp4", **dict(VIDEO, num_frames=VIDEO["num_frames"] - 24 * i)))
        for i in range(1, batch)
    ]
    singles = []
    for path in videos:
        sink: list = []
        time_calls(model.model, "get_video_features", sink)
        start = time.perf_counter()
        inputs = ours_inputs(processor, path)
        singles.append(finish(timed_generate(model, inputs, sink, new_tokens), time.perf_counter() - start))
    sink = []
    time_calls(model.model, "get_video_features", sink)
    start = time.perf_counter()
    parts = [ours_inputs(processor, path) for path in videos]
    inputs = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    preprocess = time.perf_counter() - start
    batched = finish(timed_generate(model, inputs, sink, new_tokens), preprocess)
    batched["decode_tokens_per_s"] *= batch  # tokens of all answers
    batched["end_to_end_tokens_per_s"] *= batch
    single_total = sum(s["end_to_end_s"] for s in singles)
    return {
        "load_s": load, "params": params, "batch": batch,
        "singles_total_s": single_total,
        "singles_decode_tokens_per_s": statistics.mean(s["decode_tokens_per_s"] for s in singles),
        "singles_ttft_s": [s["ttft_s"] for s in singles],
        "batch_total_s": batched["end_to_end_s"],
        "batch_ttft_s": batched["ttft_s"],
        "batch_vision_s": batched["vision_s"],
        "batch_prefill_s": batched["prefill_s"],
        "batch_decode_tokens_per_s": batched["decode_tokens_per_s"],
        "speedup": single_total / batched["end_to_end_s"],
        "max_rss_process_mib": batched["max_rss_process_mib"],
    }


# --- peers ----------------------------------------------------------------------------------------------------
def decode_frames(video: str, indices) -> torch.Tensor:
    """(T, 3, H, W) uint8 frames at `indices`, decoded by decord (as Mobile-VideoGPT's processor does first)."""
    import decord

    reader = decord.VideoReader(video, num_threads=1)
    return torch.from_numpy(reader.get_batch(list(map(int, indices))).asnumpy()).permute(0, 3, 1, 2)


def video_info(video: str) -> tuple[int, float]:
    import decord

    reader = decord.VideoReader(video, num_threads=1)
    return len(reader), float(reader.get_avg_fps())


def normalise(frames: torch.Tensor, mean=0.5, std=0.5) -> torch.Tensor:
    return (frames.float() / 255 - mean) / std


def text_ids(count: int, low: int = 300) -> list[int]:
    """`count` ordinary text tokens (the question and the chat template's text; ids only stand in)."""
    return [low + (7 * i) % 900 for i in range(count)]


PROMPT_TEXT_TOKENS = 35  # the chat template's text around the video and the question, as in our prompt


def build_peer(kind: str, dtype=torch.float32, device="cpu"):
    from transformers import (LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration, SmolVLMConfig,
                              SmolVLMForConditionalGeneration)

    torch.manual_seed(0)
    start = time.perf_counter()
    if kind == "llava":
        config = LlavaOnevisionConfig(**LLAVA_OV_05B)
        cls = LlavaOnevisionForConditionalGeneration
    else:
        config = SmolVLMConfig(**SMOLVLM2_500M)
        cls = SmolVLMForConditionalGeneration
    model = cls._from_config(config, attn_implementation="sdpa", dtype=dtype).eval().to(device)
    return model, count_params(model), time.perf_counter() - start


def run_llava(video: str, frames: int, new_tokens: int = NEW_TOKENS, device="cpu", dtype=torch.float32,
              static_cache: bool = False, compile: bool = False) -> dict:
    model, params, load = build_peer("llava", dtype, device)
    warm_up(model)
    sink: list = []
    time_calls(model.model, "get_video_features", sink)
    cfg = model.config
    sampler = RSSSampler().start()
    start = time.perf_counter()
    total, _ = video_info(video)
    indices = torch.linspace(0, total - 1, frames).round().long()  # uniform sampling, as its video processor
    pixels = torch.nn.functional.interpolate(decode_frames(video, indices).float(), size=(384, 384), mode="bicubic",
                                             align_corners=False).clamp(0, 255)
    pixels = normalise(pixels)[None].to(device, dtype)
    side = cfg.vision_config.image_size // cfg.vision_config.patch_size  # 27
    visual = frames * ((side + 1) // 2) ** 2 + 1  # LlavaOnevisionProcessor: pooled 14x14 per frame + one newline
    half = PROMPT_TEXT_TOKENS // 2
    ids = torch.tensor([text_ids(half) + [cfg.video_token_index] * visual + text_ids(PROMPT_TEXT_TOKENS - half)],
                       device=device)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values_videos": pixels}
    preprocess = time.perf_counter() - start
    result = generate_measured(model, inputs, sink, new_tokens, sampler, device, static_cache, compile)
    result.update(load_s=load, params=params, visual_tokens=visual, frames=frames,
                  prefill_flops=prefill_flops(cfg.text_config, result["prompt_tokens"]))
    return finish(result, preprocess)


def run_smolvlm(video: str, frames: int | None, new_tokens: int = NEW_TOKENS, device="cpu", dtype=torch.float32,
                static_cache: bool = False, compile: bool = False) -> dict:
    model, params, load = build_peer("smolvlm", dtype, device)
    warm_up(model)
    sink: list = []
    time_calls(model.model, "get_image_features", sink)
    cfg = model.config
    sampler = RSSSampler().start()
    start = time.perf_counter()
    total, fps = video_info(video)
    if frames is None:  # SmolVLM2's default sampling: 1 fps, at most 64 frames, evenly over the clip
        frames = max(1, min(round(1.0 * total / fps), 64))
    indices = torch.linspace(0, total - 1, frames).long().unique()
    raw = decode_frames(video, indices).float()
    size = cfg.vision_config.image_size  # 512: longest edge, then padded to a square (with its pixel mask)
    height, width = raw.shape[-2:]
    scale = size / max(height, width)
    new_h, new_w = round(height * scale), round(width * scale)
    resized = torch.nn.functional.interpolate(raw, size=(new_h, new_w), mode="bilinear", antialias=True).clamp(0, 255)
    pixels = torch.zeros(len(indices), 3, size, size)
    pixels[:, :, :new_h, :new_w] = normalise(resized)
    mask = torch.zeros(len(indices), size, size, dtype=torch.bool)
    mask[:, :new_h, :new_w] = True
    per_frame = (size // cfg.vision_config.patch_size) ** 2 // cfg.scale_factor**2  # 64 (SmolVLMProcessor.image_seq_len)
    fake, image, global_image = 49189, cfg.image_token_id, 49152
    ids = text_ids(PROMPT_TEXT_TOKENS // 2) + text_ids(25)  # template start, then "You are provided the following ..."
    for _ in range(len(indices)):  # "\nFrame from 00:0s:" + <fake><global-img><image>*64<fake>
        ids += text_ids(8) + [fake, global_image] + [image] * per_frame + [fake]
    ids += text_ids(2) + text_ids(PROMPT_TEXT_TOKENS - PROMPT_TEXT_TOKENS // 2)
    ids = torch.tensor([ids], device=device)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": pixels[None].to(device, dtype),
              "pixel_attention_mask": mask[None].to(device)}
    preprocess = time.perf_counter() - start
    result = generate_measured(model, inputs, sink, new_tokens, sampler, device, static_cache, compile)
    result.update(load_s=load, params=params, visual_tokens=per_frame * len(indices), frames=len(indices),
                  prefill_flops=prefill_flops(cfg.text_config, result["prompt_tokens"]))
    return finish(result, preprocess)


# --- VideoMamba's scan ----------------------------------------------------------------------------------------
def run_scan(**_) -> dict:
    """The scan alone vs the sequential reference, and where VideoMamba's time goes (scan vs the rest)."""
    sys.path.insert(0, str(HERE))
    from model_parts import bench_scan

    from mobilevideogpt.modeling import MobileVideoGPTConfig, modeling_mobilevideogpt
    from mobilevideogpt.modeling.modeling_mobilevideogpt import VideoMambaEncoder

    scan = bench_scan(repeats=3)
    torch.manual_seed(0)
    encoder = VideoMambaEncoder(MobileVideoGPTConfig().video_config).eval()
    frames = torch.randn(1, 8, 3, 224, 224)
    spent: list = []
    original = modeling_mobilevideogpt.selective_scan_blockwise

    def timed_scan(*args, **kwargs):
        start = time.perf_counter()
        out = original(*args, **kwargs)
        spent.append(time.perf_counter() - start)
        return out

    with torch.no_grad():
        encoder(frames)  # warm-up
        modeling_mobilevideogpt.selective_scan_blockwise = timed_scan
        start = time.perf_counter()
        encoder(frames)
        total = time.perf_counter() - start
        modeling_mobilevideogpt.selective_scan_blockwise = original
        state, decay, inputs = torch.randn(1, 1152, 16), torch.rand(1, 1152, 16), torch.randn(1, 1152, 16)
        for _ in range(100):
            state = torch.addcmul(inputs, decay, state)
        start = time.perf_counter()
        for _ in range(2000):
            state = torch.addcmul(inputs, decay, state)
        step = (time.perf_counter() - start) / 2000
    return {"scan": scan, "videomamba_s": total, "videomamba_scan_s": sum(spent), "scans": len(spent),
            "addcmul_step_us": step * 1e6}


def run_profile(**_) -> dict:
    """Where the 0.5B fp32 LM's time goes: the prefill of one video prompt (random visual tokens stand in for the
    encoders' output: the LM's cost is the same) and 16 decoding steps after it, under torch.profiler."""
    from mobilevideogpt.modeling.modeling_mobilevideogpt import CACHE_KWARG
    from torch.profiler import ProfilerActivity, profile

    model, processor, params, load = build_ours("0.5b")
    warm_up(model)
    prompt = 2437
    ids = torch.full((1, prompt), 300)
    ids[0, 20 : 20 + model.config.visual_tokens_per_video] = model.config.video_token_id
    features = torch.randn(1, model.config.visual_tokens_per_video, model.config.text_config.hidden_size) * 0.02

    def table(prof, wall: float, what: str, top: int = 10) -> dict:
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events)
        return {"what": what, "wall_s": wall, "top": [(e.key, 100 * e.self_cpu_time_total / total,
                                                        e.self_cpu_time_total / 1e3) for e in events[:top]],
                "note": f"Wall time {wall:.2f} s under the profiler."}

    with torch.no_grad():
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids), video_features=features, use_cache=True,
                        logits_to_keep=1)
            prefill_wall = time.perf_counter() - start
        prefill = table(prof, prefill_wall, f"{prompt} tokens")
        cache, token = getattr(out, CACHE_KWARG), out.logits[:, -1:].argmax(-1)
        mask = torch.ones(1, prompt + 17, dtype=torch.long)
        for step in range(2):  # unprofiled warm-up steps
            out = model(input_ids=token, attention_mask=mask[:, : prompt + step + 1], **{CACHE_KWARG: cache},
                        use_cache=True)
            token = out.logits[:, -1:].argmax(-1)
        steps = 16
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            for step in range(steps):
                out = model(input_ids=token, attention_mask=mask[:, : prompt + step + 3], **{CACHE_KWARG: cache},
                            use_cache=True)
                token = out.logits[:, -1:].argmax(-1)
            decode_wall = time.perf_counter() - start
        decode = table(prof, decode_wall, f"{steps} steps after a {prompt}-token prompt, model forward only")
        # The same steps without the profiler, and the LM head's GEMV alone: how far from streaming speed?
        start = time.perf_counter()
        for step in range(steps):
            out = model(input_ids=token, attention_mask=mask[:, : prompt + step + 1], **{CACHE_KWARG: cache},
                        use_cache=True)
            token = out.logits[:, -1:].argmax(-1)
        plain = (time.perf_counter() - start) / steps
        hidden = torch.randn(1, 1, model.config.text_config.hidden_size)
        start = time.perf_counter()
        for _ in range(steps):
            model.lm_head(hidden)
        head = (time.perf_counter() - start) / steps
    decode["note"] = (f"Wall time {decode_wall:.2f} s under the profiler; without it {plain * 1e3:.0f} ms per step "
                      f"(forward only, no generate loop), of which the LM head's GEMV alone "
                      f"({model.lm_head.weight.numel() * 4 / 1e6:.0f} MB) takes {head * 1e3:.0f} ms.")
    return {"prefill": prefill, "decode": decode, "decode_step_ms": plain * 1e3, "lm_head_ms": head * 1e3}


# --- CUDA variants (not run on the CPU machine these results come from) -------------------------------------
def cuda_cases() -> dict:
    """GPU variants: half precision, mamba kernels on/off, static cache with and without torch.compile."""
    cases = {"limits-cuda": ("limits", dict(device="cuda"))}
    for dtype in ("float16", "bfloat16"):
        for kernels in (True, False):
            cases[f"mvgpt-0.5b-{dtype}-{'kernels' if kernels else 'nokernels'}"] = (
                "ours", dict(preset="0.5b", device="cuda", dtype=dtype, kernels=kernels))
        cases[f"mvgpt-0.5b-{dtype}-static"] = ("ours", dict(preset="0.5b", device="cuda", dtype=dtype, static_cache=True))
        cases[f"mvgpt-0.5b-{dtype}-static-compile"] = (
            "ours", dict(preset="0.5b", device="cuda", dtype=dtype, static_cache=True, compile=True))
    cases["mvgpt-1.5b-bfloat16"] = ("ours", dict(preset="1.5b", device="cuda", dtype="bfloat16"))
    for name, kind, kwargs in (("llava-ov-0.5b-32f", "llava", dict(frames=32)), ("smolvlm2-500m-fps", "smolvlm",
                                                                                dict(frames=None))):
        cases[f"{name}-bfloat16"] = (kind, dict(kwargs, device="cuda", dtype="bfloat16"))
        cases[f"{name}-bfloat16-static-compile"] = (
            kind, dict(kwargs, device="cuda", dtype="bfloat16", static_cache=True, compile=True))
    return cases


RUNNERS = {"limits": run_limits, "ours": run_ours, "chat": run_chat, "batch": run_batch, "llava": run_llava,
           "smolvlm": run_smolvlm, "scan": run_scan, "profile": run_profile}


def run_case(name: str, video: str, threads: int, new_tokens: int) -> dict:
    torch.set_num_threads(threads)
    runner, kwargs = {**CASES, **cuda_cases()}[name]
    kwargs = dict(kwargs)
    if "dtype" in kwargs:
        kwargs["dtype"] = getattr(torch, kwargs["dtype"])
    if runner in ("ours", "chat", "batch", "llava", "smolvlm"):
        kwargs.update(video=video, new_tokens=new_tokens)
    return RUNNERS[runner](**kwargs)


# --- driver ---------------------------------------------------------------------------------------------------
def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def busy_cpu_seconds() -> float:
    """CPU seconds all processes have spent busy since boot (/proc/stat, idle and iowait excluded)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def setup(threads: int, new_tokens: int) -> dict:
    import transformers

    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "0")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {cpu_name()}, {os.cpu_count()} cores, {int(mem) / 2**20:.0f} GiB RAM",
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU",
        "threads": threads, "new_tokens": new_tokens, "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "video": f"{VIDEO['num_frames']} frames {VIDEO['width']}x{VIDEO['height']} "
        f"at {VIDEO['fps']:g} fps (10 s), generated by mobilevideogpt.tiny.write_video",
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the 0.5B model and one setting per peer (< 10 min)")
    parser.add_argument("--cases", help="comma-separated case names (default: all, or the quick set)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=NEW_TOKENS)
    parser.add_argument("--results", default=str(HERE / "results.json"))
    parser.add_argument("--report-only", action="store_true", help="rewrite RESULTS.md and the chart from the JSON")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # one case in this process; JSON on the last line
    parser.add_argument("--video", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case, args.video, args.threads, args.new_tokens)))
        return 0
    path = Path(args.results)
    stored = json.loads(path.read_text()) if path.exists() else {"cases": {}}
    if not args.report_only:
        if args.cases:
            names = args.cases.split(",")
        elif torch.cuda.is_available():
            names = list(cuda_cases())
        else:
            names = QUICK if args.quick else FULL
        from mobilevideogpt.tiny import write_video

        SCRATCH.mkdir(exist_ok=True)
        video = str(write_video(SCRATCH / "clip.mp4", **VIDEO))
        if args.cases and "setup" in stored:  # a partial rerun: keep the session's setup, note the update
            stored["setup"]["updated"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + f" ({args.cases})"
        else:
            stored["setup"] = setup(args.threads, args.new_tokens)
            stored["setup"]["mode"] = "quick" if args.quick else "full"
        for name in names:
            before = load_average()
            busy, ours = busy_cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            command = [sys.executable, __file__, "--case", name, "--video", video, "--threads", str(args.threads),
                       "--new-tokens", str(args.new_tokens)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{name}: FAILED\n{done.stderr[-3000:]}", flush=True)
                stored["cases"][name] = {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            wall = time.perf_counter() - start
            mine = resource.getrusage(resource.RUSAGE_CHILDREN)
            mine = mine.ru_utime + mine.ru_stime - ours.ru_utime - ours.ru_stime
            # Cores' worth of CPU used by everything else on the machine while this case ran (0 = it had the machine).
            result["other_cpu_cores"] = max(0.0, (busy_cpu_seconds() - busy - mine) / wall)
            result.update(load_average_before=before, load_average_after=load_average(),
                          wall_s=time.perf_counter() - start, measured=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
            stored["cases"][name] = result
            print(f"{name}: {json.dumps({k: v for k, v in result.items() if k != 'tokens'})}", flush=True)
            path.write_text(json.dumps(stored, indent=1))
    sys.path.insert(0, str(HERE))
    from report import write_report

    write_report(stored, HERE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
