"""ONNX Runtime (fp32 and int8 graphs of `mvgpt export-onnx`) vs PyTorch on CPU: one video question, greedy.

Usage (in the `[onnx]` environment, `.venv-onnx`):
    python benchmarks/onnx_vs_pytorch.py MODEL_DIR ONNX_DIR [--threads 2] [--new-tokens 32] [--output FILE.md]

Each engine runs in its own process (so peak memory is its own): time to first token (vision encoder + prefill),
decode speed with the KV cache, peak resident memory. The int8 graphs' drift from the fp32 graphs is measured on
the same inputs (visual tokens, prompt logits, greedy tokens).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ENGINES = ("pytorch", "onnxruntime", "onnxruntime-int8")


def _inputs(processor, video: Path) -> dict:
    messages = [{"role": "user", "content": [{"type": "video", "path": str(video)}, {"type": "text", "text": "What happens?"}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="np")


def run_engine(engine: str, model_dir: str, onnx_dir: str, video: Path, new_tokens: int, threads: int) -> dict:
    """Time one greedy answer of `new_tokens` tokens (PyTorch ignores EOS by min_new_tokens; see `tokens`)."""
    import torch

    torch.set_num_threads(threads)
    from mobilevideogpt.onnx_runtime import MobileVideoGPTOnnxRunner

    if engine == "pytorch":
        from mobilevideogpt.modeling import MobileVideoGPTForConditionalGeneration
        from transformers import AutoProcessor

        model = MobileVideoGPTForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
        inputs = _inputs(AutoProcessor.from_pretrained(onnx_dir, trust_remote_code=True), video)
        ids, mask = torch.from_numpy(inputs["input_ids"]), torch.from_numpy(inputs["attention_mask"])
        with torch.no_grad():
            start = time.perf_counter()
            features = model.get_video_features(
                torch.from_numpy(inputs["pixel_values_videos"]), torch.from_numpy(inputs["pixel_values_context"])
            )
            vision = time.perf_counter() - start
            out = model(input_ids=ids, attention_mask=mask, video_features=features.visual_tokens, use_cache=True)
            ttft = time.perf_counter() - start
            durations = []
            for count in (1, new_tokens):  # the difference is the decoding of new_tokens - 1 tokens
                start = time.perf_counter()
                generated = model.generate(input_ids=ids, attention_mask=mask, video_features=features.visual_tokens,
                                           max_new_tokens=count, min_new_tokens=count, do_sample=False)
                durations.append(time.perf_counter() - start)
        tokens = generated[0, ids.shape[1] :].tolist()
        del out
    else:
        runner = MobileVideoGPTOnnxRunner(onnx_dir, suffix="_quantized" if engine.endswith("int8") else "", num_threads=threads)
        inputs = _inputs(runner.processor, video)
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        start = time.perf_counter()
        features = runner.get_video_features(inputs["pixel_values_videos"], inputs["pixel_values_context"])
        vision = time.perf_counter() - start
        positions = np.cumsum(mask, -1) - 1
        runner.decode_step(runner.embed(ids, features["visual_tokens"]), mask, positions, runner.empty_past(1))
        ttft = time.perf_counter() - start
        durations = []
        for count in (1, new_tokens):  # the difference is the decoding of new_tokens - 1 tokens
            start = time.perf_counter()
            generated = runner.generate(ids, mask, visual_tokens=features["visual_tokens"], max_new_tokens=count)
            durations.append(time.perf_counter() - start)
        tokens = generated[0, ids.shape[1] :].tolist()
    return {
        "engine": engine,
        "vision_s": vision,
        "ttft_s": ttft,
        "prompt_tokens": int(ids.shape[1]),
        "decode_tokens_per_s": (len(tokens) - 1) / (durations[1] - durations[0]),
        "new_tokens": len(tokens),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tokens": tokens,
    }


def int8_drift(onnx_dir: str, video: Path, threads: int) -> dict:
    """Relative drift of the int8 graphs from the fp32 graphs on one video, and greedy token agreement."""
    from mobilevideogpt.onnx_runtime import MobileVideoGPTOnnxRunner

    fp32 = MobileVideoGPTOnnxRunner(onnx_dir, num_threads=threads)
    int8 = MobileVideoGPTOnnxRunner(onnx_dir, processor=fp32.processor, suffix="_quantized", num_threads=threads)
    inputs = _inputs(fp32.processor, video)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    result = {}
    logits = {}
    for name, runner in (("fp32", fp32), ("int8", int8)):
        features = runner.get_video_features(inputs["pixel_values_videos"], inputs["pixel_values_context"])
        result[f"{name}_frame_indices"] = features["frame_indices"][0].tolist()
        result[f"{name}_visual_tokens"] = features["visual_tokens"]
        logits[name], _ = runner.decode_step(runner.embed(ids, features["visual_tokens"]), mask, np.cumsum(mask, -1) - 1,
                                             runner.empty_past(1))
    a, b = result.pop("fp32_visual_tokens"), result.pop("int8_visual_tokens")
    result["visual_tokens_rel"] = float(np.abs(a - b).max() / np.abs(a).max())
    result["logits_rel"] = float(np.abs(logits["fp32"] - logits["int8"]).max() / np.abs(logits["fp32"]).max())
    result["top1_agreement_prompt"] = float((logits["fp32"].argmax(-1) == logits["int8"].argmax(-1)).mean())
    return result


def write_markdown(path: Path, results: list[dict], drift: dict, args: argparse.Namespace) -> None:
    sizes = {p.name: p.stat().st_size / 2**20 for p in sorted(Path(args.onnx_dir).glob("*.onnx"))}
    config = json.loads((Path(args.onnx_dir) / "config.json").read_text())
    vision, video, text = config["vision_config"], config["video_config"], config["text_config"]
    lines = [
        "# ONNX Runtime vs PyTorch on CPU (`benchmarks/onnx_vs_pytorch.py`)",
        "",
        f"{args.threads} threads; one generated clip, greedy, {args.new_tokens} new tokens; each engine in its own "
        "process; random weights.",
        f"Sizes: CLIP {vision['hidden_size']} wide x {vision['num_hidden_layers']} layers, VideoMamba {video['hidden_size']} x "
        f"{video['num_hidden_layers']}, LM {text['hidden_size']} x {text['num_hidden_layers']} layers."
        + (
            " With a tiny LM the prefill and decode figures are timing noise; only the vision encoder figures carry over."
            if text["hidden_size"] < 512 else ""
        ),
        "",
        "| engine | vision encoder (s) | TTFT: vision + prefill (s) | prompt tokens | decode (tokens/s) | peak RSS (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r['engine']} | {r['vision_s']:.2f} | {r['ttft_s']:.2f} | {r['prompt_tokens']} | "
                     f"{r['decode_tokens_per_s']:.1f} | {r['peak_rss_mib']:.0f} |")
    by_engine = {r["engine"]: r for r in results}
    same = by_engine["pytorch"]["tokens"] == by_engine["onnxruntime"]["tokens"]
    lines += [
        "",
        f"Greedy tokens, ONNX Runtime fp32 vs PyTorch: {'identical' if same else 'DIFFERENT'} ({by_engine['onnxruntime']['new_tokens']} tokens).",
        "",
        "int8 (onnxruntime dynamic quantization of MatMul and Gather weights) vs fp32 graphs on the same video:",
        f"visual tokens max relative error {drift['visual_tokens_rel']:.3g}, prompt logits {drift['logits_rel']:.3g}, "
        f"prompt top-1 agreement {drift['top1_agreement_prompt']:.3f}; key frames fp32 {drift['fp32_frame_indices']}, "
        f"int8 {drift['int8_frame_indices']}.",
        "",
        "Files (MiB): " + ", ".join(f"`{name}` {size:.1f}" for name, size in sizes.items()) + ".",
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("onnx_dir")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--video", help="video file (default: a generated 6 s clip)")
    parser.add_argument("--output", default=str(Path(__file__).with_name("onnx_vs_pytorch.md")))
    parser.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)  # one engine, JSON to stdout
    args = parser.parse_args(argv)
    if args.video:
        video = Path(args.video)
    else:
        import tempfile

        from mobilevideogpt.tiny import write_video

        # the clip these figures were measured on: 6 s, 320x240, 8 fps
        video = write_video(Path(tempfile.gettempdir()) / "mobilevideogpt-example.mp4", num_frames=48, width=320,
                            height=240, fps=8.0)
    if args.engine:
        print(json.dumps(run_engine(args.engine, args.model_dir, args.onnx_dir, video, args.new_tokens, args.threads)))
        return 0
    results = []
    for engine in ENGINES:
        command = [sys.executable, __file__, args.model_dir, args.onnx_dir, "--engine", engine, "--video", str(video),
                   "--threads", str(args.threads), "--new-tokens", str(args.new_tokens)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
        print({k: v for k, v in results[-1].items() if k != "tokens"}, flush=True)
    drift = int8_drift(args.onnx_dir, video, args.threads)
    print(drift)
    write_markdown(Path(args.output), results, drift, args)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
