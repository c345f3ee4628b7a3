"""Time each part of Mobile-VideoGPT-0.5B at its real size (random weights) and write benchmarks/model_parts.md.

    python benchmarks/model_parts.py [--threads 2] [--repeats 2] [--decode-tokens 64]

Parts: CLIP on 16 frames, frame scoring, VideoMamba on the 8 key frames, the two ET-Proj, the LM's prefill of
one video prompt and its decoding with a KV cache; a first question and a follow-up about one video through
`VideoChat` (the follow-up reuses the visual tokens and the KV cache); and the selective scan alone (one direction
of one VideoMamba layer: d_inner 1152, state 16, 1569 tokens) against the sequential reference and transformers'.
"""

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
import transformers

from mobilevideogpt.chat import VideoChat
from mobilevideogpt.modeling import MobileVideoGPTConfig, MobileVideoGPTForConditionalGeneration
from mobilevideogpt.processing import MobileVideoGPTProcessor, default_image_processor
from mobilevideogpt.tiny import build_tiny_tokenizer, write_video
from mobilevideogpt.modeling.modeling_mobilevideogpt import selective_scan_blockwise, selective_scan_sequential

OUT = Path(__file__).with_name("model_parts.md")


def timed(fn, repeats: int, warm_up: bool = True) -> tuple[float, object]:
    """Median seconds over `repeats` runs (after one warm-up run unless told not to), and the last result."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def scan_inputs(length: int = 1569, inner: int = 1152, state: int = 16):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(1, inner, length, generator=g)
    delta = torch.nn.functional.softplus(torch.randn(1, inner, length, generator=g) - 4)  # Mamba-like steps
    A = -torch.arange(1, state + 1, dtype=torch.float32).repeat(inner, 1)
    B, C = torch.randn(1, state, length, generator=g), torch.randn(1, state, length, generator=g)
    return u, delta, A, B, C, torch.ones(inner)


def bench_scan(repeats: int) -> dict:
    inputs = scan_inputs()
    rows = {}
    rows["blockwise (ours, fp32)"], fast = timed(lambda: selective_scan_blockwise(*inputs), repeats)
    rows["sequential reference (fp32)"], _ = timed(lambda: selective_scan_sequential(*inputs), 1, warm_up=False)
    double = [t.double() for t in inputs]
    rows["sequential reference (fp64)"], ref = timed(lambda: selective_scan_sequential(*double), 1, warm_up=False)
    try:
        from transformers.models.mamba.modeling_mamba import mamba_selective_scan
    except ImportError:  # transformers 4.x has no standalone scan
        mamba_selective_scan = None
    if mamba_selective_scan is not None:
        u, delta, A, B, C, D = inputs
        rows["transformers mamba_selective_scan (fp32)"], _ = timed(
            lambda: mamba_selective_scan(u, delta, A, B, C, D), 1, warm_up=False
        )
    error = float((fast.double() - ref).abs().max() / ref.abs().max())
    return {"seconds": rows, "max_rel_error_vs_fp64": error}


def bench_model(repeats: int, decode_tokens: int) -> dict:
    config = MobileVideoGPTConfig()
    config.text_config._attn_implementation = "sdpa"
    start = time.perf_counter()
    model = MobileVideoGPTForConditionalGeneration(config).eval()
    build = time.perf_counter() - start
    inner = model.model
    g = torch.Generator().manual_seed(0)
    videos = torch.randn(1, 16, 3, 224, 224, generator=g)
    context = torch.randn(1, 16, 3, 224, 224, generator=g)
    rows = {}
    with torch.no_grad():
        rows["CLIP ViT-B/16, 16 frames (11 of 12 layers)"], clip = timed(
            lambda: inner._clip_patch_features(context[0]), repeats
        )
        rows["frame scoring, 2 chunks (fp16 numerics)"], (indices, _) = timed(
            lambda: inner.frame_scorer(clip[None]), repeats
        )
        key_frames = videos[:, indices[0]]
        rows["VideoMamba-M, 8 frames (1569 tokens, 32 layers)"], mamba = timed(
            lambda: inner.video_encoder(key_frames), repeats
        )
        chunk_tokens = torch.randn(2, 196, 576, generator=g)
        rows["image ET-Proj, 16 frames"], _ = timed(lambda: inner.image_projector(clip), repeats)
        rows["video ET-Proj, 2 chunks"], _ = timed(lambda: inner.video_projector(chunk_tokens), repeats)
        rows["get_video_features (all of the above)"], features = timed(
            lambda: model.get_video_features(videos, context), 1, warm_up=False
        )
        prompt = [151644, 8948, 198] + [config.video_token_id] * config.visual_tokens_per_video + [198] * 15
        ids = torch.tensor([prompt])
        prefill, _ = timed(lambda: model(input_ids=ids, video_features=features, logits_to_keep=1), 1, warm_up=False)

        def decode():
            return model.generate(
                input_ids=ids, video_features=features, max_new_tokens=decode_tokens, min_new_tokens=decode_tokens,
                do_sample=False,
            )

        total, _ = timed(decode, 1, warm_up=False)
    decode_seconds = total - prefill
    return {
        "chat": bench_chat(model),
        "build_seconds": build,
        "seconds": rows,
        "prefill": {"tokens": len(prompt), "seconds": prefill, "tokens_per_second": len(prompt) / prefill},
        "decode": {
            "tokens": decode_tokens,
            "seconds": decode_seconds,
            "tokens_per_second": (decode_tokens - 1) / decode_seconds,
        },
    }


def bench_chat(model) -> dict:
    """Time to first token of a first question and of a follow-up about the same video (16 new tokens each).

    The real Qwen2 tokenizer cannot be downloaded here; the tiny tokenizer's ids stand in (the model's vocabulary
    covers them), which changes no cost but the few question tokens."""
    tokenizer = build_tiny_tokenizer()
    model.config.video_token_id = tokenizer.convert_tokens_to_ids("<|video_pad|>")
    processor = MobileVideoGPTProcessor(default_image_processor(), tokenizer)
    with tempfile.TemporaryDirectory() as folder:
        video = write_video(Path(folder) / "clip.mp4", num_frames=240, width=320, height=240, fps=24)
        chat = VideoChat(model, processor, video)
        for question in ("What is happening in this video?", "What colour is the moving square?"):
            for _ in chat.ask(question, max_new_tokens=16, min_new_tokens=16, do_sample=False):
                pass
    return {
        f"turn {i + 1}": {"seconds_to_first_token": t.seconds_to_first_token, "prefilled_tokens": t.prefilled_tokens}
        for i, t in enumerate(chat.turns)
    }


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown CPU"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--decode-tokens", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scan = bench_scan(args.repeats)
    print(json.dumps(scan, indent=2), flush=True)
    model = bench_model(args.repeats, args.decode_tokens)
    setup = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {cpu_name()}, {torch.get_num_threads()} threads",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "dtype": "float32 (random weights, real 0.5B sizes)",
        "attention": "sdpa",
    }
    lines = ["# Mobile-VideoGPT-0.5B: time per part (CPU)", "", "Written by `benchmarks/model_parts.py`.", ""]
    lines += [f"- {k}: {v}" for k, v in setup.items()]
    lines += ["", "| part | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds:.3f} |" for name, seconds in model["seconds"].items()]
    p, d = model["prefill"], model["decode"]
    lines += [
        f"| LM prefill, {p['tokens']} tokens | {p['seconds']:.2f} ({p['tokens_per_second']:.0f} tokens/s) |",
        f"| LM decode with KV cache, {d['tokens']} tokens | {d['seconds']:.2f} ({d['tokens_per_second']:.2f} tokens/s) |",
        "",
        "## One video, two questions (`VideoChat`, 240-frame 320x240 clip, decoding included)",
        "",
        "| turn | time to first token (s) | prompt tokens computed |",
        "|---|---|---|",
    ]
    lines += [
        f"| {turn} | {v['seconds_to_first_token']:.2f} | {v['prefilled_tokens']} |" for turn, v in model["chat"].items()
    ]
    lines += [
        "",
        "## Selective scan, one direction of one VideoMamba layer (d_inner 1152, state 16, 1569 tokens)",
        "",
        "| implementation | seconds | speed-up of ours |",
        "|---|---|---|",
    ]
    ours = scan["seconds"]["blockwise (ours, fp32)"]
    lines += [f"| {name} | {seconds:.3f} | {seconds / ours:.1f}x |" for name, seconds in scan["seconds"].items()]
    lines += ["", f"Max relative error of ours vs the fp64 sequential reference: {scan['max_rel_error_vs_fp64']:.1e}", ""]
    OUT.write_text("\n".join(lines))
    OUT.with_suffix(".json").write_text(json.dumps({"setup": setup, "scan": scan, "model": model}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
