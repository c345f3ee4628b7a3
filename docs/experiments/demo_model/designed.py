"""A demo base whose frozen CLIP is built in closed form (colour, position and brightness channels), on clips whose
light rises over time (every pixel brightens by the same amount) with colours of equal brightness: the image tokens
then say what, where and when. Trains projectors + whole LM on a pool of clips, all questions per record.

    [V2=1 | V3=1] python designed.py POOL STEPS BATCH [THREADS]     (README.md, "Session 6")
"""
import os, random, sys, time, torch
import numpy as np
from pathlib import Path
from transformers import AutoModel, AutoProcessor

from single import accuracy, conversation, fit, frozen_features, pad, train_lm_only
from mobilevideogpt.processing.processing_mobilevideogpt import default_image_processor
from mobilevideogpt.training import synth
from mobilevideogpt.training.demo_model import build_base

POOL, STEPS, BS = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2); torch.manual_seed(0)
RAMP = 36  # grey levels below/above at the first/last frame

MEAN, STD = (np.array(getattr(default_image_processor(), key)) for key in ("image_mean", "image_std"))
def isoluminant(hue, scale):
    h = np.array(hue, float); b = lambda v: (v / 255 / STD).sum(); h = h - b(h) / b(np.ones(3)); h = h / np.abs(h).max() * scale
    return tuple(int(v) for v in np.round(MEAN * 255 + h))
V2 = bool(os.environ.get("V2"))  # one CLIP layer whose MLP adds a coverage channel per colour
V3 = bool(os.environ.get("V3"))  # the random CLIP with the cell and brightness channels of v1 in 9 of its channels
# v2 equalises the colours' chroma (yellow's is the smallest that keeps its blue channel above 36)
SCALES = (69, 54, 56, 64) if V2 else (85, 85, 85, 64)
synth.COLOURS = {name: isoluminant(hue, scale) for (name, hue), scale in
                 zip({"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "yellow": (1, 1, 0)}.items(), SCALES)}
print(synth.COLOURS)
plain = synth.render
def render(scene):
    frames = plain(scene).astype(np.int16)
    ramp = np.round(np.linspace(-RAMP, RAMP, len(frames))).astype(np.int16)
    return (frames + ramp[:, None, None, None]).clip(0, 255).astype(np.uint8)
synth.render = render


def cell_onehots(P, first, scale):
    """Writes into position-embedding table P (197, D), from channel `first`, each patch's cell of the 4x4 grid as
    column then row one-hots times `scale` (a patch across a cell border is split by its pixels in each cell)."""
    for p in range(196):
        r, c = divmod(p, 14)
        for axis, v in ((0, c), (1, r)):
            lo, hi = v * 16, v * 16 + 16  # pixels of the 224 frame; cells are 56 wide
            for k in range(4):
                P[1 + p, first + 4 * axis + k] = scale * max(0, min(hi, 56 * (k + 1)) - max(lo, 56 * k)) / 16


def design_clip(model):
    """Patch embedding: brightness (whole patch) and two chroma axes per 8x8 quadrant; position embedding: the
    patch's 4x4-grid cell as column and row one-hots (split at cell borders) plus a constant channel that keeps the
    pre-LayerNorm's scale nearly fixed."""
    emb = model.model.image_encoder.embeddings; D = emb.patch_embedding.weight.shape[0]
    W = torch.zeros(D, 3, 16, 16)
    W[0] = 0.25 / 256  # brightness: sum of the normalised channels, patch mean, x0.25 (larger: the scorer picks the middle frames of every clip)
    axes = torch.tensor([[1, -1, 0], [1, 1, -2]], dtype=torch.float) / torch.tensor([[2 ** 0.5], [6 ** 0.5]])
    ch = 1
    for qy in range(2):
        for qx in range(2):
            for a in axes:
                W[ch, :, qy * 8:(qy + 1) * 8, qx * 8:(qx + 1) * 8] = a[:, None, None] / 64 * 2; ch += 1
    P = torch.zeros(197, D)
    cell_onehots(P, 9, 2.0)
    P[:, D - 1] = 12.0
    with torch.no_grad():
        emb.patch_embedding.weight.copy_(W); emb.position_embedding.weight.copy_(P)
        x = P[1:]; sigma = x.std(-1, unbiased=False).mean()
        model.model.image_encoder.pre_layrnorm.weight.fill_(float(sigma)); model.model.image_encoder.pre_layrnorm.bias.zero_()


def augment_clip(model, clock=0.2, position=2.0):
    """v3: the random base's CLIP, with 9 of its 64 channels given over to the brightness channel and the cell
    one-hots of `design_clip` (their random patch-embedding rows zeroed); the other 55 keep the random projections
    of all 768 pixel values."""
    emb = model.model.image_encoder.embeddings
    with torch.no_grad():
        W, P = emb.patch_embedding.weight, emb.position_embedding.weight
        # the random rows are made blind to a uniform brightening (else the ramp drives every token, and the scorer)
        v = torch.tensor(1 / STD, dtype=W.dtype)[:, None, None].expand(3, 16, 16)
        W -= (W * v).sum((1, 2, 3), keepdim=True) / (v * v).sum() * v
        W[:9] = 0; W[0] = clock / 256; P[:, :9] = 0
        cell_onehots(P, 1, position)


def design_layer(model):
    """The CLIP layer whose output is the features (`vision_feature_layer=-2` with 2 layers): no attention; the MLP
    has one unit per colour and 8x8 quadrant that fires when the quadrant is mostly that colour, summed per colour
    into channels 17-20 (2.0 for a patch all of that colour)."""
    enc = model.model.image_encoder; layer = enc.encoder.layers[0]
    # chroma (LN2 input space) of a patch filled with each colour, and of the background, measured through the model
    samples = {}
    for name, rgb in list(synth.COLOURS.items()) + [("background", synth.BACKGROUND)]:
        frame = np.full((1, synth.SIZE, synth.SIZE, 3), rgb, dtype=np.uint8)
        pc = torch.tensor(proc._clip_pixel_values(list(frame)))
        with torch.no_grad():
            h = enc.pre_layrnorm(enc.embeddings(pc))[0, 1 + 5 * 14 + 5]; y = layer.layer_norm2(h)
        samples[name] = y[1:9].reshape(4, 2)[0]  # quadrant 0's two chroma channels
    a = 8.0
    with torch.no_grad():
        layer.self_attn.out_proj.weight.zero_(); layer.self_attn.out_proj.bias.zero_()
        fc1, fc2 = layer.mlp.fc1, layer.mlp.fc2
        fc1.weight.zero_(); fc1.bias.fill_(-10.0); fc2.weight.zero_(); fc2.bias.zero_()
        unit = 0
        for k, name in enumerate(synth.COLOURS):
            u = samples[name] - samples["background"]; u = u / u.norm()
            own = float(u @ samples[name]); others = max(float(u @ v) for n, v in samples.items() if n != name)
            threshold = 0.5 * (own + others)
            for q in range(4):
                fc1.weight[unit, 1 + 2 * q:3 + 2 * q] = a * u; fc1.bias[unit] = -a * threshold
                fc2.weight[17 + k, unit] = 0.5 / (a * (own - threshold)); unit += 1
            print(name, "own", round(own, 3), "others", round(others, 3), "threshold", round(threshold, 3))


base = Path("/tmp/designed/base2" if V2 else "/tmp/designed/base")
if not (base / "config.json").exists():
    if V2:
        import mobilevideogpt.training.demo_model as dm
        plain_config = dm.tiny_config
        dm.tiny_config = lambda *a, **k: plain_config(*a, **{**k, "clip_layers": 2})
    build_base(base, 0)
proc = AutoProcessor.from_pretrained(base, trust_remote_code=True); proc.input_fps = float(synth.FPS)
model = AutoModel.from_pretrained(base, trust_remote_code=True)
augment_clip(model) if V3 else design_clip(model)
if V2:
    design_layer(model)
m = model.model


def encode(frames):
    """(8, 196, 64) CLIP features, the chunk's (16, 48) VideoMamba tokens and the selected frames of one clip."""
    b = proc(videos=frames, return_tensors="pt", min_frames=8)
    clip, chunk, idx = frozen_features(m, b["pixel_values_videos"], b["pixel_values_context"])
    return clip.half(), chunk[0].half(), tuple(idx[0].tolist())


def make(n, seed, single):
    rng = random.Random(seed); out = []; picks = set(); t = time.perf_counter()
    for i in range(n):
        sc = synth.make_scene(rng); clip, chunk, idx = encode(synth.render(sc)); picks.add(idx)
        qs = synth.questions(sc, rng)
        if single:
            out += [(*conversation(proc, [q]), clip, chunk, q[0]) for q in qs]
        else:
            rng.shuffle(qs); out.append((*conversation(proc, qs), clip, chunk, "multi"))
    print("made", n, "clips", len(out), "records", round(time.perf_counter() - t), "s; distinct selections", len(picks), flush=True)
    return out


held = make(100, 10_000, True)
train = make(POOL, 0, False)
train_lm_only(model); m.image_projector.requires_grad_(True); m.video_projector.requires_grad_(True)
params = [p for p in model.parameters() if p.requires_grad]


def run(batch):
    ids, lab, att = pad(batch); B = len(batch)
    img = m.image_projector(torch.stack([b[2] for b in batch]).float().flatten(0, 1)).reshape(B, -1, 128)
    vid = m.video_projector(torch.stack([b[3] for b in batch]).float()).reshape(B, -1, 128)
    return model(input_ids=ids, attention_mask=att, video_features=torch.cat([img, vid], 1), labels=lab), lab


rng = random.Random(1)
fit(run, params, lambda: rng.sample(train, BS), held, STEPS, "designed")
print("FINAL", accuracy(run, held), flush=True)
