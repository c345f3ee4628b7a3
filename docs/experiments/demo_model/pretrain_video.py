"""VideoMamba pre-trained on the clips' scene facts, from the key frames the frame scorer keeps (session 7).

    python pretrain_video.py FOLDER CLIPS HIDDEN LAYERS STEPS BATCH      # env: PATCH (28), STATE (8), LR (2e-3),
                                                                         # DENSE (0), EVAL (500), CONV (4), AUG (0)

Writes CLIPS training clips (seed 0) and 300 held-out clips (seed 10,000) with `write_dataset` (timed for the
8-frame sampler), builds the demo base with one key frame per window of two (`num_frames=8, chunk_size=2,
frames_per_chunk=1`) and VideoMamba on 112x112 frames with PATCH-pixel patches, keeps each clip's 4 key frames as
`get_video_features` chooses them, then trains VideoMamba and one linear layer on the mean of its patch tokens to
give 12 scene facts: the colour of each kind, the kind of each colour, the mover's direction, the count, the first
and the last colour, and whether two shapes touch. DENSE > 0 adds per-token targets (the mover's direction on its
tokens after it moved; contact per occupied cell) for 16 tokens per frame (PATCH 28), weighted by DENSE.
CONV is VideoMamba's causal convolution width (4 in the original): with PATCH 56 a frame is 4 tokens, so a width of
5 or more lets each token's convolution see the same place in the previous key frame. Prints held-out accuracy per
fact every EVAL steps; saves the key frames (`train_keys.pt`, `held_keys.pt`) and VideoMamba (`video_encoder.pt`)
to FOLDER for `together.py`. AUG=1 mirrors each training clip left-right and up-down at random (the direction label
follows; up-down mirroring also turns triangles upside down).
"""
import os
import sys
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from mobilevideogpt.modeling import (
    MobileVideoGPTForConditionalGeneration,
    VideoMambaConfig,
)
from mobilevideogpt.processing.video_processing_mobilevideogpt import (
    sample_frame_indices,
)
from mobilevideogpt.tiny import build_tiny_tokenizer, save_model_folder, tiny_config
from mobilevideogpt.training.data import SupervisedDataset
from mobilevideogpt.training.synth import (
    COLOURS,
    DIRECTIONS,
    FPS,
    SECONDS,
    SHAPES,
    Scene,
    write_dataset,
)
from transformers import AutoProcessor

from single import FACT_CLASSES, scene_facts

torch.set_num_threads(2)
W, N, HIDDEN, LAYERS, STEPS, BATCH = Path(sys.argv[1]), *map(int, sys.argv[2:7])
env = os.environ.get
PATCH, STATE, LR, CONV = int(env("PATCH", 28)), int(env("STATE", 8)), float(env("LR", 2e-3)), int(env("CONV", 4))
DENSE, EVAL, AUG = float(env("DENSE", 0)), int(env("EVAL", 500)), env("AUG") == "1"
SECONDS_SAMPLED = [i / FPS for i in sample_frame_indices(SECONDS * FPS, FPS, num_frames=8, min_frames=8)]
NAMES = [f"colour_of_{k}" for k in SHAPES] + [f"kind_of_{c}" for c in COLOURS] + ["direction", "count", "first", "last",
                                                                                   "touch"]

start = time.perf_counter()
if not (W / "train" / "data.json").exists():
    write_dataset(W / "train", N, seed=0, turns=6)
    write_dataset(W / "held", 300, seed=10_000, turns=6)
print("synth", round(time.perf_counter() - start, 1), flush=True)
tokenizer = build_tiny_tokenizer()
torch.manual_seed(0)
config = tiny_config(
    tokenizer, clip_layers=1, lm_hidden=128, lm_intermediate=384, lm_layers=4, image_pool_size=2, video_pool_size=1,
    frame_scoring_precision="float32", num_frames=8, chunk_size=2, frames_per_chunk=1,
    video_config=VideoMambaConfig(hidden_size=HIDDEN, num_hidden_layers=LAYERS, state_size=STATE, patch_size=PATCH,
                                  image_size=112, num_frames=4, conv_kernel=CONV),
)
model = MobileVideoGPTForConditionalGeneration(config)
save_model_folder(model, tokenizer, W / "base")
processor = AutoProcessor.from_pretrained(W / "base", trust_remote_code=True)
m = model.model.eval()


def dense(scene, kept):
    """(4, 16) per-token targets: the mover's direction (1-4) where it is after moving; contact (1) per cell."""
    times = [SECONDS_SAMPLED[i] for i in kept]
    direction, contact = torch.zeros(4, 16, dtype=torch.long), torch.zeros(4, 16, dtype=torch.long)
    mover = scene.shapes[scene.mover]
    first = next(t for t in times if t >= mover.appears)
    for k, t in enumerate(times):
        cells = [c for c in scene.cells(t) if c is not None]
        for c in cells:
            if any(abs(c[0] - o[0]) + abs(c[1] - o[1]) == 1 for o in cells):
                contact[k, int(c[1]) * 4 + int(c[0])] = 1
        if t >= mover.appears and scene.mover_cell(t) != scene.mover_cell(first):
            c = scene.mover_cell(t)
            direction[k, int(c[1]) * 4 + int(c[0])] = 1 + list(DIRECTIONS).index(scene.direction)
    return direction, contact


def key_frames(split):
    """Each clip's key frames (fp16, as VideoMamba gets them), its facts, its selection and its dense targets."""
    dataset = SupervisedDataset(W / split / "data.json", processor)
    keys, ys, kept, dense_targets = [], [], [], []
    for i in range(len(dataset)):
        item = dataset[i]
        pv, pc = item["pixel_values_videos"][None], item["pixel_values_context"][None]
        with torch.no_grad():
            indices, _ = m.frame_scorer(m._clip_patch_features(pc.flatten(0, 1)).unflatten(0, (1, -1)))
        keys.append(pv.gather(1, indices[:, :, None, None, None].expand(-1, -1, *pv.shape[2:]))[0].half())
        scene = Scene.from_dict(dataset.records[i]["scene"])
        ys.append(scene_facts(scene))
        kept.append(tuple(indices[0].tolist()))
        dense_targets.append(dense(scene, kept[-1]))
    torch.save((torch.stack(keys), torch.tensor(ys), kept), W / f"{split}_keys.pt")  # for together.py
    return (torch.stack(keys), torch.tensor(ys), kept, torch.stack([d for d, _ in dense_targets]),
            torch.stack([c for _, c in dense_targets]))


Xtr, Ytr, kept, Dtr, Ctr = key_frames("train")
Xte, Yte, _, _, _ = key_frames("held")
print("key frames", round(time.perf_counter() - start, 1), "distinct selections", len(set(kept)),
      Counter(kept).most_common(4), flush=True)

encoder = m.video_encoder.train().requires_grad_(True)
head, dense_head = torch.nn.Linear(HIDDEN, sum(FACT_CLASSES)), torch.nn.Linear(HIDDEN, 7)
params = [*encoder.parameters(), *head.parameters(), *dense_head.parameters()]
optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.01)
schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LR, total_steps=STEPS, pct_start=0.05)


def evaluate():
    encoder.eval()
    correct = torch.zeros(len(FACT_CLASSES))
    with torch.no_grad():
        for i in range(0, len(Xte), 64):
            outs = head(encoder(Xte[i : i + 64].float())[:, 1:].mean(1)).split(FACT_CLASSES, -1)
            correct += torch.stack([(o.argmax(-1) == Yte[i : i + 64, h]).sum() for h, o in enumerate(outs)])
    encoder.train()
    return {name: round(a, 3) for name, a in zip(NAMES, (correct / len(Xte)).tolist())}


generator = torch.Generator().manual_seed(0)
start = time.perf_counter()
for step in range(1, STEPS + 1):
    batch = torch.randint(len(Xtr), (BATCH,), generator=generator)
    x, y = Xtr[batch], Ytr[batch].clone()
    if AUG:  # mirror left-right and up-down at random; the direction label follows
        for axis, swap in ((-1, [1, 0, 2, 3]), (-2, [0, 1, 3, 2])):
            flip = torch.rand(BATCH, generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None, None], x.flip(axis), x)
            y[:, 7] = torch.where(flip, torch.tensor(swap)[y[:, 7]], y[:, 7])
    tokens = encoder(x.float())[:, 1:]
    outs = head(tokens.mean(1)).split(FACT_CLASSES, -1)
    loss = sum(F.cross_entropy(o, y[:, h]) for h, o in enumerate(outs))
    if DENSE:
        d = dense_head(tokens)
        loss = loss + DENSE * (F.cross_entropy(d[..., :5].flatten(0, 1), Dtr[batch].flatten())
                               + F.cross_entropy(d[..., 5:].flatten(0, 1), Ctr[batch].flatten()))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    schedule.step()
    if step % 100 == 0:
        print(step, round(loss.item(), 3), round(time.perf_counter() - start, 1), flush=True)
    if step % EVAL == 0 or step == STEPS:
        print("EVAL", step, evaluate(), flush=True)
torch.save(encoder.state_dict(), W / "video_encoder.pt")  # for together.py
