"""`mvgpt`: the package's command line."""

import argparse
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from .demo import answer, example_video, load_demo_model

    model, processor, description = load_demo_model(args.model)
    print(f"Model: {description}")
    video = Path(args.video) if args.video else example_video()
    print(f"Video: {video}\nQuestion: {args.question}\nAnswer: ", end="", flush=True)
    result = answer(model, processor, video, args.question, args.max_new_tokens, on_text=lambda t: print(t, end="", flush=True))
    print()
    print(f"Sampled frames: {result.sampled_frames}")
    print(f"Timestamps (s): {[round(t, 2) for t in result.timestamps]}")
    print(f"Key frames (positions in the 16 sampled): {result.key_frames}")
    print(f"Frame scores: {[round(s, 2) for s in result.frame_scores]}")
    print(
        f"Speed: first token after {result.seconds_to_first_token:.2f} s (vision included), "
        f"{result.tokens_per_second:.1f} tokens/s, {result.new_tokens} new tokens, "
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

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
