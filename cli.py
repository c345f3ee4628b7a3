"""`mvgpt`: the package's command line."""

import argparse
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from .chat import VideoChat
    from .demo import example_clips, load_demo_model

    model, processor, description = load_demo_model(args.model)
    print(f"Model: {description}")
    if args.video:
        video, question = Path(args.video), args.question or "What happens in this video?"
    else:
        video, example_question = example_clips(count=1)[0]
        question = args.question or example_question
    print(f"Video: {video}\nQuestion: {question}\nAnswer: ", end="", flush=True)
    chat = VideoChat(model, processor, video)
    try:
        for text in chat.ask(question, max_new_tokens=args.max_new_tokens, do_sample=False):
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


def _train(args: argparse.Namespace) -> int:
    from .training.data import DataError
    from .training.train import TrainConfig, train

    overrides = {
        "epochs": args.epochs, "learning_rate": args.learning_rate, "batch_size": args.batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps, "max_steps": args.max_steps,
        "seed": args.seed, "media_root": args.media_root, "lora_r": args.lora_r, "lora_alpha": args.lora_alpha,
        "dataloader_num_workers": args.num_workers,
    }
    try:
        if args.config:
            config = TrainConfig.from_file(args.config, **overrides)
        else:
            config = TrainConfig(**{key: value for key, value in overrides.items() if value is not None})
        output = train(args.stage, args.model, args.data, args.output, config)
    except (DataError, ValueError, FileNotFoundError) as error:
        print(f"mvgpt train: {error}", file=sys.stderr)
        return 1
    print(f"Wrote {output} (loss curve: {Path(output) / 'loss.png'})")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from .training.synth import write_dataset

    data = write_dataset(args.out, args.n, args.seed, args.turns)
    print(f"Wrote {args.n} clips to {Path(args.out) / 'clips'} and their questions to {data}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import json

    from .processing import VideoDecodeError
    from .training.data import DataError
    from .training.evaluate import evaluate, format_report

    try:
        report = evaluate(args.model, args.data, limit=args.limit, media_root=args.media_root)
    except (DataError, VideoDecodeError, OSError) as error:
        print(f"mvgpt eval: {error}", file=sys.stderr)
        return 1
    print(format_report(report))
    output = Path(args.output) if args.output else Path(args.data).with_name("eval_results.json")
    output.write_text(json.dumps(report, indent=1))
    print(f"Wrote {output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mvgpt", description="Mobile-VideoGPT for Hugging Face transformers")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="answer a question about a video (a generated clip by default)")
    demo.add_argument("--model", help="Hub id or folder (default: $MVGPT_MODEL, the Hub model, or the embedded model)")
    demo.add_argument("--video", help="video file (default: a generated clip of coloured shapes)")
    demo.add_argument("--question", help="default: a question about the example clip, or 'What happens in this video?'")
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

    train = commands.add_parser("train", help="run one stage of the training recipe (Trainer + PEFT; accelerate launch for several processes)")
    train.add_argument("--stage", type=int, choices=[1, 2, 3], required=True,
                       help="1: video projector, 2: image projector, 3: LoRA instruction tuning")
    train.add_argument("--data", required=True, help="LLaVA-style JSON (video or image path + conversations)")
    train.add_argument("--model", required=True, help="model folder or Hub id to start from")
    train.add_argument("--output", required=True, help="new folder for the trained model")
    train.add_argument("--config", help="JSON or YAML file of training settings (fields of training.train.TrainConfig)")
    train.add_argument("--media-root", help="folder the data's paths are relative to (default: the JSON's folder)")
    train.add_argument("--epochs", type=float)
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--batch-size", type=int, help="per device")
    train.add_argument("--gradient-accumulation-steps", type=int)
    train.add_argument("--max-steps", type=int)
    train.add_argument("--lora-r", type=int)
    train.add_argument("--lora-alpha", type=int)
    train.add_argument("--num-workers", type=int, help="data loader workers")
    train.add_argument("--seed", type=int)
    train.set_defaults(run=_train)

    synth = commands.add_parser("synth", help="write synthetic video QA: clips of moving shapes + questions JSON")
    synth.add_argument("--out", required=True)
    synth.add_argument("--n", type=int, required=True, help="number of clips")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--turns", type=int, default=1,
                       help="questions per record (1: one record per question; more: multi-turn records)")
    synth.set_defaults(run=_synth)

    evaluate = commands.add_parser("eval", help="exact-match accuracy of a model folder on a QA JSON, overall and per type")
    evaluate.add_argument("--model", required=True, help="model folder or Hub id")
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--limit", type=int, help="first N questions only")
    evaluate.add_argument("--media-root")
    evaluate.add_argument("--output", help="JSON report (default: eval_results.json beside the data)")
    evaluate.set_defaults(run=_eval)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
