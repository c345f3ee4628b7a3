"""Best case for session 7's design: how fast does the LM learn to answer from a clip's facts in its video tokens?

    [SINGLE=1] python oracle_table.py BASE STEPS BATCH [THREADS]

BASE: a model folder with one key frame per window of two (8 frames, image tokens 2x2, 1 video token per key frame,
as `pretrain_video.py` writes to FOLDER/base). Each of the 4 video tokens is a trained linear map of the clip's 12
scene facts as one-hots (what a perfectly pre-trained VideoMamba would give); the image tokens are zeros. The LM is
re-initialised as `training/demo_model.build_base` does and trained whole (embeddings frozen) on all questions of
BATCH fresh scenes per step, in one conversation per scene (SINGLE=1: one record per question); held-out: single
questions of 100 scenes of seed 10,000.
"""
import os
import random
import sys

import torch
from mobilevideogpt.training.demo_model import init_small_language_model
from mobilevideogpt.training.synth import make_scene, questions
from transformers import AutoModel, AutoProcessor

from single import FACT_CLASSES, conversation, fit, pad, scene_facts, train_lm_only

BASE, STEPS, BATCH = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
SINGLE = os.environ.get("SINGLE") == "1"
torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)


def facts(scene):
    """The scene's facts as concatenated one-hots."""
    return torch.cat([torch.nn.functional.one_hot(torch.tensor(v), n).float()
                      for v, n in zip(scene_facts(scene), FACT_CLASSES)])


processor = AutoProcessor.from_pretrained(BASE, trust_remote_code=True)
model = AutoModel.from_pretrained(BASE, trust_remote_code=True)
m = model.model
torch.manual_seed(0)
init_small_language_model(model)
train_lm_only(model)
width = m.config.text_config.hidden_size
image_tokens = m.config.num_frames * m.config.image_tokens_per_frame
video_tokens = m.config.num_chunks * m.config.video_tokens_per_chunk
table = torch.nn.Linear(sum(FACT_CLASSES), width)
params = [p for p in model.parameters() if p.requires_grad] + list(table.parameters())


def run(batch):
    ids, labels, mask = pad(batch)
    video = table(torch.stack([b[2] for b in batch]))[:, None].expand(-1, video_tokens, -1)
    visual = torch.cat([torch.zeros(len(batch), image_tokens, width), video], 1)
    return model(input_ids=ids, attention_mask=mask, video_features=visual, labels=labels), labels


rng = random.Random(0)


def draw():
    batch = []
    for _ in range(BATCH):
        scene = make_scene(rng)
        qs = questions(scene, rng)
        rng.shuffle(qs)
        if SINGLE:
            batch += [(*conversation(processor, [q]), facts(scene), q[0]) for q in qs]
        else:
            batch.append((*conversation(processor, qs), facts(scene), "multi"))
    return batch


held_rng = random.Random(10_000)
held = []
for _ in range(100):
    scene = make_scene(held_rng)
    for q in questions(scene, held_rng):
        held.append((*conversation(processor, [q]), facts(scene), q[0]))
fit(run, params, draw, held, STEPS, "table")
