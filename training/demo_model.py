"""Builds the embedded demo model: a small Mobile-VideoGPT trained by the three-stage recipe on synthetic video QA.

    python -m mobilevideogpt.training.demo_model --work /tmp/demo-work --out training/demo_model

The original recipe starts from pretrained parts: CLIP, VideoMamba (Kinetics actions) and a Qwen2 LM that already
answers questions; its stages then teach the projectors to put the encoders' output where the LM reads it and tune
the LM. This script builds small parts pretrained the same way on the synthetic clips, then runs the same stages:

1. `mvgpt synth`: 8,000 training clips and 300 held-out clips (another seed), one record per question.
2. The base (`build_base`): the real architecture at small widths with the package's small tokenizer: a random
   one-layer CLIP 64 wide (frozen throughout: the frame scorer's features and the image tokens' source), 8 frames,
   one key frame per window of two (`chunk_size=2, frames_per_chunk=1`), VideoMamba 64 wide with 3 layers on
   112x112 frames, a Qwen2 LM 128 wide with 4 layers; 32 image tokens (2x2 per frame) and 4 video tokens (one per
   key frame) per video.
   - VideoMamba pre-training (`pretrain_video_encoder`): on the key frames the frame scorer keeps from each training
     clip, VideoMamba and a linear head on the mean of its patch tokens learn the clip's 12 scene facts
     (`scene_facts`), the clips mirrored left-right and up-down at random. The head is dropped.
   - LM pre-training (`pretrain_language_model`): on fresh scenes, the LM learns to answer every question type from
     the scene's facts written into its 4 video-token positions by a linear table of one-hots (dropped afterwards),
     with all-zero image tokens; the image ET-Proj starts with a zero output layer, so the LM sees the same zeros
     until stage 2 trains it.
3. Stages 1 (video ET-Proj, LM frozen: aligns VideoMamba's tokens with what the LM learned to read), 2 (image
   ET-Proj) and 3 (LoRA on the LM with both projectors) of `training.train`, the recipe's structure and LoRA shape;
   step counts, batches and learning rates sized for 2 CPU cores (`STAGE_SETTINGS`).
4. `mvgpt eval` on the held-out split; the report is saved beside the weights (`eval.json`).

Deterministic from `--seed` (same machine and library versions). How each choice was found:
`docs/experiments/demo_model/README.md`.

Measured (2026-11-25, 2-core CPU, torch 2.13.0, transformers 5.23.0, seed 0; the committed `embedded_model/`): 41.7
minutes in all (synth 2.3, base 23.1: key frames and both pre-trainings, stage 1 6.8, stage 2 0.5, stage 3 8.6,
evaluation 0.3); 98.7 % of the 1,590 held-out questions (colour 99.7, count 100, direction 98.3, order 99.0, shape
99.0, touch 95.4).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoProcessor

from ..modeling import MobileVideoGPTForConditionalGeneration, VideoMambaConfig
from ..processing import MobileVideoGPTProcessor
from ..tiny import build_tiny_tokenizer, save_model_folder, tiny_config
from .data import DataCollator, SupervisedDataset, to_messages, tokenize_conversation
from .evaluate import evaluate, format_report
from .synth import COLOURS, DIRECTIONS, SHAPES, Scene, make_scene, questions, write_dataset
from .train import TrainConfig, train

TRAIN_CLIPS, HELD_OUT_CLIPS = 8000, 300

# The 12 scene facts and their numbers of classes: the colour (0 absent, 1-4) of each kind; the kind (0 absent, 1-3)
# of each colour; the mover's direction; the count - 1; the first and the last colour; whether the mover touches.
FACT_CLASSES = (5, 5, 5, 4, 4, 4, 4, 4, 3, 4, 4, 2)
DIRECTION_FACT = 7

VIDEO_PRETRAINING = dict(steps=2500, batch_size=64, learning_rate=3e-3)
LM_PRETRAINING = dict(steps=800, scenes_per_step=16, learning_rate=1e-3)
STAGE_SETTINGS = {
    1: dict(max_steps=400, learning_rate=1e-3, batch_size=32),
    2: dict(max_steps=50, learning_rate=1e-4, batch_size=16),
    3: dict(max_steps=400, learning_rate=2e-4, projector_learning_rate=2e-4, batch_size=32),
}
COMMON = dict(gradient_accumulation_steps=1, gradient_checkpointing=False, dataloader_num_workers=1, logging_steps=10)


def scene_facts(scene: Scene) -> list[int]:
    """The 12 facts of a scene as class indices (see `FACT_CLASSES`)."""
    colours, kinds = list(COLOURS), list(SHAPES)
    colour_of, kind_of = [0] * len(kinds), [0] * len(colours)
    for shape in scene.shapes:
        colour_of[kinds.index(shape.kind)] = 1 + colours.index(shape.colour)
        kind_of[colours.index(shape.colour)] = 1 + kinds.index(shape.kind)
    first = min(scene.shapes, key=lambda s: s.appears).colour
    last = max(scene.shapes, key=lambda s: s.appears).colour
    return [*colour_of, *kind_of, list(DIRECTIONS).index(scene.direction), len(scene.shapes) - 1,
            colours.index(first), colours.index(last), int(scene.touches)]


def build_base(folder: Path, train_data: Path, seed: int) -> Path:
    """The pretrained base model (see the module docstring), saved to `folder`."""
    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(seed)
    config = tiny_config(
        tokenizer, clip_layers=1, lm_hidden=128, lm_intermediate=384, lm_layers=4, image_pool_size=2,
        video_pool_size=1, frame_scoring_precision="float32", num_frames=8, chunk_size=2, frames_per_chunk=1,
        # A causal convolution of width 8 spans the previous key frame's 4 tokens (the original's width is 4).
        video_config=VideoMambaConfig(hidden_size=64, num_hidden_layers=3, state_size=16, patch_size=56,
                                      image_size=112, num_frames=4, conv_kernel=8),
    )
    model = MobileVideoGPTForConditionalGeneration(config)
    init_small_language_model(model)
    # The LM is pre-trained with all-zero image tokens: a zero output layer keeps them zero until stage 2 trains it.
    projector = model.model.image_projector
    for parameter in (projector.fc2.weight, projector.fc2.bias, projector.pos_conv.bias):
        torch.nn.init.zeros_(parameter)
    save_model_folder(model, tokenizer, folder)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    pretrain_video_encoder(model, processor, train_data, seed)
    pretrain_language_model(model, processor, seed)
    return save_model_folder(model, tokenizer, folder)


def init_small_language_model(model: MobileVideoGPTForConditionalGeneration) -> None:
    """Re-initialises the LM's embeddings and linear layers for a narrow LM trained from scratch (in place)."""
    # At the default init (std 0.02) the tied logits of a 128-wide LM stay within about +-2.5; std 0.1 (norm ~1.1)
    # gives confident logits without every position predicting its own token.
    torch.nn.init.normal_(model.get_input_embeddings().weight, std=0.1)
    # Qwen2's std 0.02 suits 896+ wide layers; at 128 wide it leaves attention logits near zero.
    for module in model.model.language_model.modules():
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=module.in_features**-0.5)


@torch.no_grad()
def key_frames(model: MobileVideoGPTForConditionalGeneration, processor: MobileVideoGPTProcessor, data: Path):
    """Each clip of `data` once: (its key frames as VideoMamba gets them, fp16 (clips, K, 3, S, S); its facts
    (clips, 12)). The key frames are those the model's frame scorer keeps, as `get_video_features` chooses them."""
    dataset = SupervisedDataset(data, processor)
    first_record = {}
    for index, record in enumerate(dataset.records):
        first_record.setdefault(record["video"], index)
    indices = list(first_record.values())
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, indices), batch_size=32, num_workers=1,
        collate_fn=DataCollator(processor.tokenizer.pad_token_id),
    )
    m, keys = model.model, []
    for batch in loader:
        videos, context = batch["pixel_values_videos"], batch["pixel_values_context"]
        chosen, _ = m.frame_scorer(m._clip_patch_features(context.flatten(0, 1)).unflatten(0, context.shape[:2]))
        keys.append(videos.gather(1, chosen[:, :, None, None, None].expand(-1, -1, *videos.shape[2:])).half())
    facts = [scene_facts(Scene.from_dict(dataset.records[index]["scene"])) for index in indices]
    return torch.cat(keys), torch.tensor(facts)


def pretrain_video_encoder(model: MobileVideoGPTForConditionalGeneration, processor: MobileVideoGPTProcessor,
                           train_data: Path, seed: int) -> None:
    """Trains `model`'s VideoMamba (in place) to give each training clip's scene facts, as a linear read-out of the
    mean of its patch tokens over the clip's key frames."""
    steps, batch_size, learning_rate = (VIDEO_PRETRAINING[k] for k in ("steps", "batch_size", "learning_rate"))
    frames, facts = key_frames(model, processor, train_data)
    encoder = model.model.video_encoder.train().requires_grad_(True)
    head = torch.nn.Linear(encoder.config.hidden_size, sum(FACT_CLASSES))
    parameters = [*encoder.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=steps, pct_start=0.05)
    generator = torch.Generator().manual_seed(seed)
    # Mirroring left-right swaps the directions left and right (0, 1), up-down swaps up and down (2, 3).
    mirrors = ((-1, torch.tensor([1, 0, 2, 3])), (-2, torch.tensor([0, 1, 3, 2])))
    for step in range(1, steps + 1):
        chosen = torch.randint(len(frames), (batch_size,), generator=generator)
        x, y = frames[chosen].float(), facts[chosen].clone()
        for axis, swap in mirrors:
            flip = torch.rand(batch_size, generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None, None], x.flip(axis), x)
            y[:, DIRECTION_FACT] = torch.where(flip, swap[y[:, DIRECTION_FACT]], y[:, DIRECTION_FACT])
        logits = head(encoder(x)[:, 1:].mean(1)).split(FACT_CLASSES, -1)
        loss = sum(F.cross_entropy(fact, y[:, i]) for i, fact in enumerate(logits))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
        if step % 100 == 0:
            print(f"video pre-training step {step}/{steps}: loss {loss.item():.4f}", flush=True)
    encoder.eval().requires_grad_(False)


def pretrain_language_model(model: MobileVideoGPTForConditionalGeneration, processor: MobileVideoGPTProcessor,
                            seed: int) -> None:
    """Trains `model`'s LM (in place; its embeddings stay as initialised) to answer every question about fresh scenes
    from their facts, written by a linear table of one-hots into all video-token positions; image tokens are zeros."""
    steps, scenes_per_step, learning_rate = (LM_PRETRAINING[k] for k in ("steps", "scenes_per_step", "learning_rate"))
    lm, config = model.model.language_model, model.config
    model.requires_grad_(False)
    lm.requires_grad_(True)
    lm.embed_tokens.requires_grad_(False)
    width = config.text_config.hidden_size
    image_tokens = config.num_frames * config.image_tokens_per_frame
    video_tokens = config.num_chunks * config.video_tokens_per_chunk
    table = torch.nn.Linear(sum(FACT_CLASSES), width)
    parameters = [p for p in lm.parameters() if p.requires_grad] + list(table.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=0.0)
    warmup = 100
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * (step + 1) / steps))
    )
    collate = DataCollator(processor.tokenizer.pad_token_id)
    rng = random.Random(seed)
    for step in range(1, steps + 1):
        items, facts = [], []
        for _ in range(scenes_per_step):
            scene = make_scene(rng)
            one_hots = torch.cat([F.one_hot(torch.tensor(value), n).float()
                                  for value, n in zip(scene_facts(scene), FACT_CLASSES)])
            for _, question, answer in questions(scene, rng):
                record = {"video": "", "conversations": [{"from": "human", "value": f"<video>\n{question}"},
                                                         {"from": "gpt", "value": answer}]}
                input_ids, labels = tokenize_conversation(processor, to_messages(record), 4096)
                items.append({"input_ids": torch.tensor(input_ids), "labels": torch.tensor(labels)})
                facts.append(one_hots)
        batch = collate(items)
        video = table(torch.stack(facts))[:, None].expand(-1, video_tokens, -1)
        visual = torch.cat([torch.zeros(len(items), image_tokens, width), video], 1)
        loss = model(**batch, video_features=visual).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
        if step % 100 == 0:
            print(f"LM pre-training step {step}/{steps}: loss {loss.item():.4f}", flush=True)
    model.requires_grad_(False)


def build(work: Path, out: Path, seed: int = 0, train_clips: int = TRAIN_CLIPS, held_out_clips: int = HELD_OUT_CLIPS,
          stages: tuple[int, ...] = (1, 2, 3)) -> dict:
    """Runs every step; returns the held-out evaluation report."""
    timings = {}
    start = time.perf_counter()
    train_data = write_dataset(work / "train", train_clips, seed=seed)
    held_out = write_dataset(work / "held_out", held_out_clips, seed=seed + 10_000)
    timings["synth"] = time.perf_counter() - start

    start = time.perf_counter()
    model = build_base(work / "base", train_data, seed)
    timings["base"] = time.perf_counter() - start
    for stage in stages:
        start = time.perf_counter()
        config = TrainConfig(seed=seed, **COMMON, **STAGE_SETTINGS[stage])
        model = train(stage, model, train_data, work / f"stage{stage}", config)
        timings[f"stage{stage}"] = time.perf_counter() - start

    start = time.perf_counter()
    report = evaluate(model, held_out)
    timings["eval"] = time.perf_counter() - start
    report["seconds"] = {key: round(value, 1) for key, value in timings.items()}
    report["torch_threads"] = torch.get_num_threads()
    print(format_report(report))

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(model, out, ignore=shutil.ignore_patterns("checkpoints", "adapter", "training_log.json"))
    for stage in stages:
        shutil.copy(work / f"stage{stage}" / "loss.png", out / f"loss_stage{stage}.png")
    (out / "loss.png").unlink(missing_ok=True)
    (out / "eval.json").write_text(json.dumps(report, indent=1))
    write_card(out, report, seed)
    return report


def write_card(folder: Path, report: dict, seed: int) -> None:
    """The model card (`README.md`) of a built demo model: what it is, how it was built, its held-out accuracy."""
    per_type = report["per_type"].items()
    rows = "\n".join(f"| {kind} | {row['questions']} | {row['accuracy']:.1%} |" for kind, row in per_type)
    minutes = sum(report["seconds"].values()) / 60
    (folder / "README.md").write_text(
        "---\nlibrary_name: transformers\npipeline_tag: video-text-to-text\ntags:\n- mobilevideogpt\n- custom_code\n"
        "- synthetic\n---\n\n# Mobile-VideoGPT demo model (synthetic shapes)\n\n"
        "A small Mobile-VideoGPT (the real architecture at small widths: CLIP 64 wide, VideoMamba 64 wide, a Qwen2 LM "
        "128 wide with 4 layers, a small byte-level BPE tokenizer) trained by the three-stage recipe on synthetic "
        "clips of coloured shapes. It answers questions about such clips only: a shape's colour or kind, which way one "
        "moves, how many shapes there are, which colour appears first or last, whether two touch. It is the offline "
        "default of the `mobilevideogpt` package's demo.\n\n"
        f"Built by `python -m mobilevideogpt.training.demo_model --seed {seed}` in {minutes:.0f} minutes on "
        f"{report['torch_threads']} CPU threads (see that module for every step).\n\n"
        f"Held-out accuracy (`mvgpt eval`, greedy, exact match) on {report['questions']} questions about clips of "
        "another seed:\n\n| type | questions | accuracy |\n|---|---|---|\n"
        f"{rows}\n| overall | {report['questions']} | {report['accuracy']:.1%} |\n\n"
        "```python\nfrom transformers import AutoModel, AutoProcessor\n\n"
        'model = AutoModel.from_pretrained("<this folder>", trust_remote_code=True)\n'
        'processor = AutoProcessor.from_pretrained("<this folder>", trust_remote_code=True)\n```\n'
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder for data and stage outputs")
    parser.add_argument("--out", type=Path, required=True, help="folder for the final model and its eval.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-clips", type=int, default=TRAIN_CLIPS)
    parser.add_argument("--held-out-clips", type=int, default=HELD_OUT_CLIPS)
    args = parser.parse_args(argv)
    build(args.work, args.out, args.seed, args.train_clips, args.held_out_clips)


if __name__ == "__main__":
    main()
