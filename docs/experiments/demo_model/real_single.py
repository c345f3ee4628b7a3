"""Real cached features (from cache.py), single-question records of the given types: learnable from the actual visual tokens?

    python real_single.py KIND[,KIND...] STEPS THREADS WORK_FOLDER
"""
import sys, json, torch
from pathlib import Path
from transformers import AutoModel, AutoProcessor

from single import fit, pad, sampler, train_lm_only
from mobilevideogpt.training.data import tokenize_conversation
KINDS, STEPS, NT, W = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
torch.set_num_threads(NT); torch.manual_seed(0)
proc = AutoProcessor.from_pretrained(W / "base", trust_remote_code=True)
def records(split, cache):
    out = []
    for rec in json.loads((W / split / "data.json").read_text()):
        conv = rec["conversations"]
        for t, kind in enumerate(rec["types"]):
            if kind not in KINDS: continue
            q = conv[2 * t]["value"].replace("<video>\n", ""); a = conv[2 * t + 1]["value"]
            msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": q}]}, {"role": "assistant", "content": a}]
            ids, lab = tokenize_conversation(proc, msgs, 4096)
            clip, chunk, _ = cache[rec["video"]]
            out.append((torch.tensor(ids), torch.tensor(lab), clip, chunk, kind))
    return out
tr = records("train", torch.load(W / "train.pt", weights_only=True)["cache"]); he = records("held_out", torch.load(W / "held.pt", weights_only=True)["cache"])
print(len(tr), len(he), flush=True)
model = AutoModel.from_pretrained(W / "base", trust_remote_code=True); m = model.model
train_lm_only(model)
m.image_projector.requires_grad_(True); m.video_projector.requires_grad_(True)
params = [p for p in model.parameters() if p.requires_grad]
def run(batch):
    B = len(batch); ids, lab, att = pad(batch)
    clip = torch.stack([b[2] for b in batch]).float(); chunk = torch.cat([b[3] for b in batch]).float()
    img = m.image_projector(clip.flatten(0, 1)).reshape(B, -1, 128); vid = m.video_projector(chunk).reshape(B, -1, 128)
    return model(input_ids=ids, attention_mask=att, video_features=torch.cat([img, vid], 1), labels=lab), lab
fit(run, params, sampler(tr), he, STEPS, KINDS)
