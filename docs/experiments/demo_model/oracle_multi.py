"""Oracle tokens that also say WHERE and WHEN: each cell's true colour and shape plus its column and row (scaled to
-1..1) and its frame (one-hot and scaled); every record asks all questions of a fresh scene, drawn on the fly.

    python oracle_multi.py STEPS THREADS BATCH [frame|noframe|none] [BASE=/tmp/demo-diag/base]

`noframe` leaves the frame out: the LM then has only its token positions (RoPE) to tell frames apart, as with the
real image tokens; `none` leaves out the column and row too (colour and shape only, as `oracle_single.py`).
"""
import sys, random, torch
from pathlib import Path
from transformers import AutoProcessor

from single import conversation, fit, oracle_lm
from mobilevideogpt.training.synth import make_scene, questions, COLOURS, SHAPES, GRID
STEPS, NT, BS = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
WHERE = sys.argv[4] if len(sys.argv) > 4 else "frame"
base = Path(sys.argv[5]) if len(sys.argv) > 5 else Path("/tmp/demo-diag/base")
torch.set_num_threads(NT); torch.manual_seed(0)
proc = AutoProcessor.from_pretrained(base, trust_remote_code=True)


def feats(sc):
    """(8 frames, 16 cells, 20): colour one-hot (+ none), shape one-hot (+ none), frame one-hot, column, row, frame."""
    x = torch.zeros(8, 16, 20); x[:, :, 4] = 1; x[:, :, 8] = 1
    if WHERE != "none":
        x[:, :, 17] = (torch.arange(16) % 4 - 1.5) / 1.5; x[:, :, 18] = (torch.arange(16) // 4 - 1.5) / 1.5
    if WHERE == "frame":
        x[:, :, 9:17] = torch.eye(8)[:, None]; x[:, :, 19] = (torch.arange(8)[:, None] - 3.5) / 3.5
    for f, s in enumerate(range(0, 16, 2)):
        for shape, cell in zip(sc.shapes, sc.cells(s)):
            if cell is None: continue
            k = round(cell[1]) * GRID + round(cell[0]); x[f, k, :9] = 0
            x[f, k, list(COLOURS).index(shape.colour)] = 1; x[f, k, 5 + SHAPES.index(shape.kind)] = 1
    return x


def record(sc, qs):
    return (*conversation(proc, qs), feats(sc), qs[0][0])


rng = random.Random(10_000); held = []
for _ in range(100):  # the held-out scenes of the other scripts: 528 single questions
    sc = make_scene(rng); held += [record(sc, [q]) for q in questions(sc, rng)]
run, params = oracle_lm(base, 20)
rng = random.Random(1)


def draw():
    batch = []
    for _ in range(BS):
        sc = make_scene(rng); qs = questions(sc, rng); rng.shuffle(qs); batch.append(record(sc, qs))
    return batch


fit(run, params, draw, held, STEPS, WHERE)
