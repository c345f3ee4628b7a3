"""Real cached features (from cache.py), single-question records of the given types: learnable from the actual visual tokens?

    python real_single.py KIND[,KIND...] STEPS THREADS WORK_FOLDER
"""
import sys, random, time, math, json, torch
from pathlib import Path
from transformers import AutoModel, AutoProcessor
from mobilevideogpt.training.data import tokenize_conversation
KINDS, STEPS, NT, W = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
torch.set_num_threads(NT); torch.manual_seed(0)
proc = AutoProcessor.from_pretrained(W / "base", trust_remote_code=True)
def records(split, data, cache):
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
tr = records("train", None, torch.load(W / "train.pt")["cache"]); he = records("held_out", None, torch.load(W / "held.pt")["cache"])
print(len(tr), len(he), flush=True)
model = AutoModel.from_pretrained(W / "base", trust_remote_code=True); m = model.model
model.requires_grad_(False); m.language_model.requires_grad_(True); m.language_model.embed_tokens.requires_grad_(False)
m.image_projector.requires_grad_(True); m.video_projector.requires_grad_(True)
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0)
def run(batch):
    L = max(len(b[0]) for b in batch); B = len(batch)
    ids = torch.zeros(B, L, dtype=torch.long); lab = torch.full((B, L), -100); att = torch.zeros(B, L, dtype=torch.long)
    for i, b in enumerate(batch): ids[i, :len(b[0])] = b[0]; lab[i, :len(b[0])] = b[1]; att[i, :len(b[0])] = 1
    clip = torch.stack([b[2] for b in batch]).float(); chunk = torch.cat([b[3] for b in batch]).float()
    img = m.image_projector(clip.flatten(0, 1)).reshape(B, -1, 128); vid = m.video_projector(chunk).reshape(B, -1, 128)
    return model(input_ids=ids, attention_mask=att, video_features=torch.cat([img, vid], 1), labels=lab), lab
def acc():
    hit = {}
    with torch.no_grad():
        for i in range(0, len(he), 50):
            out, lab = run(he[i:i+50]); pred = out.logits[:, :-1].argmax(-1); tgt = lab[:, 1:]
            for j in range(pred.shape[0]):
                mk = tgt[j] != -100; hit.setdefault(he[i + j][4], []).append(bool((pred[j][mk] == tgt[j][mk]).all()))
    return {k: round(100 * sum(v) / len(v)) for k, v in hit.items()}
t0 = time.perf_counter(); rng = random.Random(0); ls = []
for step in range(1, STEPS + 1):
    f = min(1, step / 100) * 0.5 * (1 + math.cos(math.pi * step / STEPS))
    for g in opt.param_groups: g["lr"] = 1e-3 * f
    out, _ = run(rng.sample(tr, 16)); out.loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step(); opt.zero_grad()
    ls.append(out.loss.item())
    if step % 100 == 0: print(step, round(sum(ls[-100:]) / 100, 4), round(time.perf_counter() - t0), flush=True)
    if step % 500 == 0: print("ACC", KINDS, step, acc(), flush=True)
