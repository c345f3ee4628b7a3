"""Oracle tokens, single-question records of one type (or `all`) from fresh scenes: is it learnable by the small LM?

    python oracle_single.py KIND STEPS THREADS [SCENES=6000] [BASE=/tmp/demo-diag/base]
"""
import sys, random, time, math, collections, torch
from pathlib import Path
from transformers import AutoModel, AutoProcessor
from mobilevideogpt.training.synth import make_scene, questions, COLOURS, SHAPES, GRID
from mobilevideogpt.training.data import tokenize_conversation
KIND, STEPS, NT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]); NSCENES = int(sys.argv[4]) if len(sys.argv) > 4 else 6000
torch.set_num_threads(NT); torch.manual_seed(0)
base = Path(sys.argv[5]) if len(sys.argv) > 5 else Path("/tmp/demo-diag/base")
proc = AutoProcessor.from_pretrained(base, trust_remote_code=True)
def scenes(n, seed):
    rng = random.Random(seed); out = []; made = 0
    while made < n:
        sc = make_scene(rng); qs = [q for q in questions(sc, rng) if KIND == "all" or q[0] == KIND]
        if not qs: continue
        made += 1
        x = torch.zeros(8, 16, 9); x[:, :, 4] = 1; x[:, :, 8] = 1
        for f, s in enumerate(range(0, 16, 2)):
            for shape, cell in zip(sc.shapes, sc.cells(s)):
                if cell is None: continue
                k = round(cell[1]) * GRID + round(cell[0]); x[f, k] = 0
                x[f, k, list(COLOURS).index(shape.colour)] = 1; x[f, k, 5 + SHAPES.index(shape.kind)] = 1
        for q in qs:
            msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": q[1]}]}, {"role": "assistant", "content": q[2]}]
            ids, lab = tokenize_conversation(proc, msgs, 4096)
            out.append((torch.tensor(ids), torch.tensor(lab), x, q[0]))
    return out
tr, he = scenes(NSCENES, 1), scenes(100, 10_000)
print(len(tr), len(he), flush=True)
model = AutoModel.from_pretrained(base, trust_remote_code=True); m = model.model
model.requires_grad_(False); m.language_model.requires_grad_(True); m.language_model.embed_tokens.requires_grad_(False)
op = torch.nn.Linear(9, 128); op.weight.data.normal_(std=0.3)
params = [p for p in model.parameters() if p.requires_grad] + list(op.parameters())
opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0)
def run(batch, train=True):
    L = max(len(b[0]) for b in batch); B = len(batch)
    ids = torch.zeros(B, L, dtype=torch.long); lab = torch.full((B, L), -100); att = torch.zeros(B, L, dtype=torch.long)
    for i, (a, l, _, _) in enumerate(batch): ids[i, :len(a)] = a; lab[i, :len(a)] = l; att[i, :len(a)] = 1
    vis = op(torch.stack([b[2] for b in batch])).reshape(B, -1, 128); vis = torch.cat([vis, torch.zeros(B, 4, 128)], 1)
    return model(input_ids=ids, attention_mask=att, video_features=vis, labels=lab), lab
def acc():
    hit = {}
    with torch.no_grad():
        for i in range(0, len(he), 50):
            out, lab = run(he[i:i+50]); pred = out.logits[:, :-1].argmax(-1); tgt = lab[:, 1:]
            for j in range(pred.shape[0]):
                mk = tgt[j] != -100; hit.setdefault(he[i + j][3], []).append(bool((pred[j][mk] == tgt[j][mk]).all()))
    allr = [x for v in hit.values() for x in v]
    return round(100 * sum(allr) / len(allr), 1), {k: round(100 * sum(v) / len(v)) for k, v in sorted(hit.items())}
t0 = time.perf_counter(); rng = random.Random(0); ls = []
for step in range(1, STEPS + 1):
    f = min(1, step / 100) * 0.5 * (1 + math.cos(math.pi * step / STEPS))
    for g in opt.param_groups: g["lr"] = 1e-3 * f
    out, _ = run(rng.sample(tr, 16)); out.loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step(); opt.zero_grad()
    ls.append(out.loss.item())
    if step % 100 == 0: print(step, round(sum(ls[-100:]) / 100, 4), round(time.perf_counter() - t0), flush=True)
    if step % 500 == 0: print("ACC", KIND, step, acc(), flush=True)
