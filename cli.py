"""`mvgpt`: the package's command line."""

import argparse
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from .chat import VideoChat
    from .demo import example_video, load_demo_model

    model, processor, description = load_demo_model(args.model)
    print(f"Model: {description}")
    video = Path(args.video) if args.video else example_video()
    print(f"Video: {video}\nQuestion: {args.question}\nAnswer: ", end="", flush=True)
    chat = VideoChat(model, processor, video)
    try:
        for text in chat.ask(args.question, max_new_tokens=args.max_new_tokens, do_sample=False):
            print(text, end="", flush=True)
    except ValueError as error:  # VideoDecodeError (unreadable video) is a ValueError
        print(f"\nmvgpt demo: {error}", file=sys.stderr)
        return 2
    turn = chat.turns[-1]
    print(f"\nSampled frames: {chat.metadata['frame_indices']}")
    print(f"Timestamps (s): {[round(t, 2) for t in chat.metadata['timestamps']]}")
    print(f"Key frames (positions in the 16 sampled): {chat.features.frame_indices[0].tolist()}")
    print(f"Frame scores: {[round(s, 2) for s in chat.features.frame_scores[0].tolist()]}")
    print(
        f"Speed: first token after {turn.seconds_to_first_token:.2f} s (video decoding and encoding included), "
        f"{turn.tokens_per_second:.1f} tokens/s, {turn.new_tokens} new tokens, "
        f"{model.config.visual_tokens_per_video} visual tokens, {model.device}, {model.dtype}"
    )
    return 0


def _convert(args: argparse.Namespace) -> int:
    from .hub_upload import ConversionError, convert

    try:
        report = convert(
            Path(args.original), Path(args.clip), Path(args.output),
            videomamba=Path(args.videomamba) if args.videomamba else None, dtype=args.dtype,
        )
    except (ConversionError, FileNotFoundError) as error:
        print(f"mvgpt convert: {error}", file=sys.stderr)
        return 1
    print(report)
    print(f"Wrote {args.output}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from .hub_upload.publish import PublishError, merge_lora, push, push_space

    try:
        if args.command == "push":
            print(push(Path(args.folder), args.repo_id, args.private, args.revision, args.dry_run))
        elif args.command == "push-space":
            print(push_space(args.repo_id, args.model_id, args.private, args.dry_run))
        else:
            print(f"Wrote {merge_lora(Path(args.adapter), Path(args.output), args.base)}")
    except PublishError as error:
        print(f"mvgpt {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    try:
        from .hub_upload.export_onnx import run_export_onnx
    except ImportError as error:
        print(
            f"mvgpt export-onnx: needs optimum-onnx, which requires transformers < 4.58 ({error}). Run it from the "
            "[onnx] environment: `make compat-env`, then `.venv-onnx/bin/mvgpt export-onnx ...`",
            file=sys.stderr,
        )
        return 2
    return run_export_onnx(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mvgpt", description="Mobile-VideoGPT for Hugging Face transformers")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="answer a question about a video (a generated clip by default)")
    demo.add_argument("--model", help="Hub id or folder (default: $MVGPT_MODEL, the Hub model, or the embedded model)")
    demo.add_argument("--video", help="video file (default: a generated example clip)")
    demo.add_argument("--question", default="What happens in this video?")
    demo.add_argument("--max-new-tokens", type=int, default=32)
    demo.set_defaults(run=_demo)

    convert = commands.add_parser("convert", help="convert the original Mobile-VideoGPT release into one Hub folder")
    convert.add_argument("--original", required=True, help="Mobile-VideoGPT repo folder (LM, projectors, tokenizer)")
    convert.add_argument("--clip", required=True, help="openai/clip-vit-base-patch16 folder")
    convert.add_argument("--videomamba", help="videomamba_m16_25M_f8_res224.pth (needed if the repo lacks the tower)")
    convert.add_argument("--output", required=True, help="new folder to write")
    convert.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float16",
                         help="dtype of the LM and projectors (the encoders stay float32); default: as published")
    convert.set_defaults(run=_convert)

    push = commands.add_parser("push", help="validate a model (or PEFT adapter) folder, then upload it in one commit")
    push.add_argument("folder")
    push.add_argument("--repo-id", required=True, help="ORG/NAME")
    push.add_argument("--private", action="store_true")
    push.add_argument("--revision", help="branch to commit to (created if missing)")
    push.add_argument("--dry-run", action="store_true", help="validate and print the commit, upload nothing")
    push.set_defaults(run=_publish)

    merge = commands.add_parser("merge-lora", help="merge a PEFT LoRA adapter into its base model")
    merge.add_argument("adapter", help="adapter folder (adapter_config.json + weights)")
    merge.add_argument("--output", required=True)
    merge.add_argument("--base", help="base model folder or Hub id (default: the adapter's base_model_name_or_path)")
    merge.set_defaults(run=_publish)

    space = commands.add_parser("push-space", help="upload space/ as a Gradio Space running MODEL_ID")
    space.add_argument("--repo-id", required=True, help="ORG/NAME of the Space")
    space.add_argument("--model-id", required=True, help="model the Space loads (its MVGPT_MODEL variable)")
    space.add_argument("--private", action="store_true")
    space.add_argument("--dry-run", action="store_true")
    space.set_defaults(run=_publish)

    onnx = commands.add_parser("export-onnx", help="export to ONNX for onnxruntime / transformers.js ([onnx] environment)")
    onnx.add_argument("model", help="model folder or Hub id")
    onnx.add_argument("--output", required=True)
    onnx.add_argument("--dtype", choices=["fp32", "fp16"], default="fp32")
    onnx.add_argument("--quantize", choices=["int8"])
    onnx.add_argument("--no-validate", action="store_true", help="skip the onnxruntime-vs-PyTorch check after export")
    onnx.set_defaults(run=_export_onnx)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
