"""Diagnostic: train projectors + LM on cached encoder features; teacher-forced held-out accuracy by type."""
import sys, torch, time, math, random, argparse, collections
from pathlib import Path
from transformers import AutoModel
p = argparse.ArgumentParser()
p.add_argument("--w", default="/tmp/demo-diag"); p.add_argument("--steps", type=int, default=3000)
p.add_argument("--lr", type=float, default=1e-3); p.add_argument("--plr", type=float, default=1e-3)
p.add_argument("--bs", type=int, default=8); p.add_argument("--lora", type=int, default=0)
p.add_argument("--eval_every", type=int, default=500); p.add_argument("--wd", type=float, default=0.0)
p.add_argument("--oracle", type=int, default=0); p.add_argument("--warm", type=int, default=100); p.add_argument("--embed", type=int, default=0)
a = p.parse_args(); print(a)
torch.set_num_threads(int(__import__("os").environ.get("NT", "2"))); torch.manual_seed(0); random.seed(0)
w = Path(a.w)
tr, he = torch.load(w / "train.pt", weights_only=True), torch.load(w / "held.pt", weights_only=True)
model = AutoModel.from_pretrained(w / "base", trust_remote_code=True)
m = model.model
model.requires_grad_(False)
m.image_projector.requires_grad_(True); m.video_projector.requires_grad_(True)
if a.lora:
    from peft import LoraConfig, get_peft_model
    model = get_peft_model(model, LoraConfig(r=a.lora, lora_alpha=2 * a.lora, lora_dropout=0.05,
        target_modules=r".*language_model\..*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"))
    m.image_projector.requires_grad_(True); m.video_projector.requires_grad_(True)
else:
    m.language_model.requires_grad_(True)
    if not a.embed: m.language_model.embed_tokens.requires_grad_(False)
if a.oracle:
    from oracle import oracle
    ORA = {"train": oracle(1500, 0, 6), "held": oracle(100, 10_000, 1)}
    oproj = torch.nn.Linear(9, model.config.text_config.hidden_size); oproj.weight.data.normal_(std=0.3)
    m.oracle_proj = oproj
proj = [p_ for n, p_ in model.named_parameters() if p_.requires_grad and "projector" in n]
rest = [p_ for n, p_ in model.named_parameters() if p_.requires_grad and "projector" not in n]
print("trainable", sum(x.numel() for x in proj), sum(x.numel() for x in rest))
opt = torch.optim.AdamW([{"params": rest, "lr": a.lr}, {"params": proj, "lr": a.plr}], weight_decay=a.wd)
base_lrs = [a.lr, a.plr]
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(w / "base")
words = ["red", "green", "blue", "yellow", "circle", "square", "triangle", "left", "right", "up", "down", "one", "two", "three", "yes", "no"]
ANSWER_IDS = torch.tensor(sorted({tok(x, add_special_tokens=False)["input_ids"][0] for x in words}))
print("answer first tokens", len(ANSWER_IDS), [tok(x, add_special_tokens=False)["input_ids"] for x in words])
pad = model.config.text_config.pad_token_id or 0
def batch(recs, cache):
    L = max(len(r["input_ids"]) for r in recs)
    ids = torch.full((len(recs), L), pad); lab = torch.full((len(recs), L), -100); att = torch.zeros((len(recs), L), dtype=torch.long)
    for i, r in enumerate(recs):
        n = len(r["input_ids"]); ids[i, :n] = r["input_ids"]; lab[i, :n] = r["labels"]; att[i, :n] = 1
    if a.oracle:
        o = ORA["train" if cache is tr["cache"] else "held"]
        return ids, lab, att, torch.stack([o[r["video"]] for r in recs]), None
    clip = torch.stack([cache[r["video"]][0] for r in recs]).float()  # (B, 8, 196, C)
    chunk = torch.cat([cache[r["video"]][1] for r in recs]).float()
    return ids, lab, att, clip, chunk
def visual(clip, chunk):
    if a.oracle:
        B = clip.shape[0]; img = m.oracle_proj(clip).reshape(B, -1, m.oracle_proj.out_features)
        return torch.cat([img, torch.zeros(B, 4, img.shape[-1])], 1)
    B = chunk.shape[0]
    img = m.image_projector(clip.flatten(0, 1) if clip.dim() == 4 else clip)
    img = img.reshape(B, -1, img.shape[-1])
    vid = m.video_projector(chunk).reshape(B, -1, img.shape[-1])
    return torch.cat([img, vid], 1)
def evaluate():
    model.eval(); res = collections.defaultdict(list)
    with torch.no_grad():
        for i in range(0, len(he["recs"]), 32):
            recs = he["recs"][i:i + 32]
            ids, lab, att, clip, chunk = batch(recs, he["cache"])
            logits = model(input_ids=ids, attention_mask=att, video_features=visual(clip, chunk)).logits
            pred = logits[:, :-1].argmax(-1); tgt = lab[:, 1:]
            for j, r in enumerate(recs):
                mask = tgt[j] != -100
                res[r["types"][0]].append(bool((pred[j][mask] == tgt[j][mask]).all()))
    model.train()
    allr = [x for v in res.values() for x in v]
    out = (round(sum(allr) / len(allr), 3), {k: round(100 * sum(v) / len(v)) for k, v in sorted(res.items())})
    return out, "train-first-token", first_token_acc(tr["recs"][:256], tr["cache"]), "held-first-token", first_token_acc(he["recs"], he["cache"])
def first_token_acc(recs, cache):
    model.eval(); hit = tot = 0
    with torch.no_grad():
        for i in range(0, len(recs), 32):
            r = recs[i:i + 32]
            ids, lab, att, clip, chunk = batch(r, cache)
            logits = model(input_ids=ids, attention_mask=att, video_features=visual(clip, chunk)).logits
            pred = logits[:, :-1].argmax(-1); tgt = lab[:, 1:]
            mask = torch.isin(tgt, ANSWER_IDS)
            hit += int((pred[mask] == tgt[mask]).sum()); tot += int(mask.sum())
    model.train(); return round(hit / tot, 3)
t0 = time.perf_counter(); recs = tr["recs"]; losses = []
for step in range(1, a.steps + 1):
    f = min(1.0, step / a.warm) * 0.5 * (1 + math.cos(math.pi * step / a.steps))
    for g, lr in zip(opt.param_groups, base_lrs): g["lr"] = lr * f
    ids, lab, att, clip, chunk = batch(random.sample(recs, a.bs), tr["cache"])
    loss = model(input_ids=ids, attention_mask=att, video_features=visual(clip, chunk), labels=lab).loss
    loss.backward(); torch.nn.utils.clip_grad_norm_(rest + proj, 1.0); opt.step(); opt.zero_grad()
    losses.append(loss.item())
    if step % 50 == 0: print(step, round(sum(losses[-50:]) / 50, 4), round(time.perf_counter() - t0), flush=True)
    if step % a.eval_every == 0 or step == a.steps: print("EVAL", step, evaluate(), flush=True)
