"""The training loop, held-out accuracy, oracle-token model, conversation tokenising and frozen-encoder features
shared by oracle_single.py, oracle_multi.py, real_single.py, designed.py and cache.py; the scene facts and the
LM-only training set-up of pretrain_video.py, oracle_table.py and together.py.

A record is a tuple whose first two items are `input_ids` and `labels` and whose last is its question type;
`run(batch)` returns `(model output with loss, labels)` for a list of records.
"""
import math, random, time, torch


def pad(batch):
    """(input_ids, labels, attention_mask), each (len(batch), longest), right-padded with 0 / -100 / 0."""
    L = max(len(b[0]) for b in batch); B = len(batch)
    ids = torch.zeros(B, L, dtype=torch.long); lab = torch.full((B, L), -100); att = torch.zeros(B, L, dtype=torch.long)
    for i, b in enumerate(batch): ids[i, :len(b[0])] = b[0]; lab[i, :len(b[0])] = b[1]; att[i, :len(b[0])] = 1
    return ids, lab, att


def accuracy(run, held):
    """Teacher-forced exact match on held-out records: (overall %, {type: %})."""
    hit = {}
    with torch.no_grad():
        for i in range(0, len(held), 50):
            out, lab = run(held[i:i + 50]); pred = out.logits[:, :-1].argmax(-1); tgt = lab[:, 1:]
            for j in range(pred.shape[0]):
                mk = tgt[j] != -100; hit.setdefault(held[i + j][-1], []).append(bool((pred[j][mk] == tgt[j][mk]).all()))
    allr = [x for v in hit.values() for x in v]
    return round(100 * sum(allr) / len(allr), 1), {k: round(100 * sum(v) / len(v)) for k, v in sorted(hit.items())}


def conversation(proc, qs):
    """(input_ids, labels) of one record asking the (type, question, answer) items `qs` in turn about one video."""
    from mobilevideogpt.training.data import tokenize_conversation
    msgs = []
    for i, (_, q, a) in enumerate(qs):
        media = [{"type": "video"}] if i == 0 else []
        msgs += [{"role": "user", "content": media + [{"type": "text", "text": q}]}, {"role": "assistant", "content": a}]
    ids, lab = tokenize_conversation(proc, msgs, 4096)
    return torch.tensor(ids), torch.tensor(lab)


def frozen_features(m, pv, pc):
    """What the frozen encoders give for N videos, before the projectors: CLIP features (N * F, 196, C), the chunks'
    pooled VideoMamba tokens (N * chunks, tokens, C') and the selected frames (N, K), as `get_video_features` computes
    them."""
    from mobilevideogpt.modeling.modeling_mobilevideogpt import adaptive_avg_pool2d
    with torch.no_grad():
        clip = m._clip_patch_features(pc.flatten(0, 1))
        idx, _ = m.frame_scorer(clip.unflatten(0, (-1, pc.shape[1])))
        key = pv.gather(1, idx[:, :, None, None, None].expand(-1, -1, *pv.shape[2:]))
        side = m.config.video_config.patches_per_side
        video = m.video_encoder(key)[:, 1:]
        video = video.reshape(-1, side, side, video.shape[-1]).permute(0, 3, 1, 2)
        video = adaptive_avg_pool2d(video, side, m.config.video_pool_size).flatten(2).transpose(1, 2)
        return clip, video.reshape(-1, m.config.video_tokens_per_chunk_in, video.shape[-1]), idx


def sampler(records, batch=16, seed=0):
    """`draw()` for `fit`: `batch` records sampled from `records`."""
    rng = random.Random(seed)
    return lambda: rng.sample(records, batch)


# The 12 scene facts, as the demo model's VideoMamba pre-training uses them.
from mobilevideogpt.training.demo_model import FACT_CLASSES, scene_facts  # noqa: E402,F401


def train_lm_only(model):
    """Freezes `model` but its LM, and the LM's embeddings."""
    model.requires_grad_(False); model.model.language_model.requires_grad_(True)
    model.model.language_model.embed_tokens.requires_grad_(False)


def oracle_lm(base, features):
    """The base model's LM (embeddings frozen) reading oracle tokens: a trained linear layer maps each record's
    (8 frames, 16 cells, `features`) tensor (its third item) to the 128 image tokens; the 4 video tokens are zeros.
    Returns `(run, trainable parameters)`."""
    from transformers import AutoModel
    model = AutoModel.from_pretrained(base, trust_remote_code=True); m = model.model
    train_lm_only(model)
    op = torch.nn.Linear(features, 128); op.weight.data.normal_(std=0.3)
    params = [p for p in model.parameters() if p.requires_grad] + list(op.parameters())

    def run(batch):
        B = len(batch); ids, lab, att = pad(batch)
        vis = op(torch.stack([b[2] for b in batch])).reshape(B, -1, 128); vis = torch.cat([vis, torch.zeros(B, 4, 128)], 1)
        return model(input_ids=ids, attention_mask=att, video_features=vis, labels=lab), lab
    return run, params


def fit(run, params, draw, held, steps, name, lr=1e-3):
    """AdamW on the batches `draw()` returns, 100 warm-up steps then cosine, gradient clipping at 1; prints the loss
    every 100 steps and the held-out accuracy every 500."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0)
    t0 = time.perf_counter(); ls = []
    for step in range(1, steps + 1):
        f = min(1, step / 100) * 0.5 * (1 + math.cos(math.pi * step / steps))
        for g in opt.param_groups: g["lr"] = lr * f
        out, _ = run(draw()); out.loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step(); opt.zero_grad()
        ls.append(out.loss.item())
        if step % 100 == 0: print(step, round(sum(ls[-100:]) / 100, 4), round(time.perf_counter() - t0), flush=True)
        if step % 500 == 0: print("ACC", name, step, accuracy(run, held), flush=True)
