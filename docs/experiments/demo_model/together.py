"""The two halves of session 7 together: the LM reads the fact-pretrained VideoMamba's real video tokens.

    python together.py FOLDER STEPS BATCH

FOLDER: a `pretrain_video.py` folder (its base, clips, key frames `*_keys.pt` and trained `video_encoder.pt`). VideoMamba is frozen; its tokens of each clip's 4 key
frames, pooled per frame as `get_video_features` does (`video_pool_size` 1), go through the model's video ET-Proj
(trained) to the 4 video tokens; the image tokens are zeros here. The LM (re-initialised as `build_base` does) is
trained whole with its embeddings frozen, on BATCH single-question records per step from the training clips; held-out:
every question of the 300 held-out clips, one per record.
"""
import json
import random
import sys
from pathlib import Path

import torch
from mobilevideogpt.training.demo_model import init_small_language_model
from transformers import AutoModel, AutoProcessor

from single import conversation, fit, pad, train_lm_only

W, STEPS, BATCH = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(2)
processor = AutoProcessor.from_pretrained(W / "base", trust_remote_code=True)
model = AutoModel.from_pretrained(W / "base", trust_remote_code=True)
m = model.model
m.video_encoder.load_state_dict(torch.load(W / "video_encoder.pt", weights_only=True))
torch.manual_seed(0)
init_small_language_model(model)
train_lm_only(model)
m.video_projector.requires_grad_(True)
width = m.config.text_config.hidden_size
image_tokens = m.config.num_frames * m.config.image_tokens_per_frame


def pooled_video_tokens(split):
    """(clips, 4 key frames, 1, hidden): VideoMamba's patch tokens of each key frame, averaged (video_pool_size 1)."""
    keys = torch.load(W / f"{split}_keys.pt", weights_only=True)[0]
    out = []
    with torch.no_grad():
        for i in range(0, len(keys), 128):
            tokens = m.video_encoder(keys[i : i + 128].float())[:, 1:]
            out.append(tokens.unflatten(1, (4, -1)).mean(2, keepdim=True))
    return torch.cat(out)


def single_questions(split, video):
    records = json.loads((W / split / "data.json").read_text())
    items = []
    for clip, record in enumerate(records):
        turns = record["conversations"]
        for k, kind in enumerate(record["types"]):
            question = turns[2 * k]["value"].replace("<video>\n", "")
            items.append((*conversation(processor, [(kind, question, turns[2 * k + 1]["value"])]), video[clip], kind))
    return items


train = single_questions("train", pooled_video_tokens("train"))
held = single_questions("held", pooled_video_tokens("held"))
print("records", len(train), len(held), flush=True)
params = [p for p in model.parameters() if p.requires_grad]


def run(batch):
    ids, labels, mask = pad(batch)
    video = m.video_projector(torch.stack([b[2] for b in batch]).flatten(0, 1)).reshape(len(batch), -1, width)
    visual = torch.cat([torch.zeros(len(batch), image_tokens, width), video], 1)
    return model(input_ids=ids, attention_mask=mask, video_features=visual, labels=labels), labels


rng = random.Random(0)
fit(run, params, lambda: rng.sample(train, BATCH), held, STEPS, "together")
