"""Oracle tokens, single-question records of one type (or `all`) from fresh scenes: is it learnable by the small LM?

    python oracle_single.py KIND STEPS THREADS [SCENES=6000] [BASE=/tmp/demo-diag/base]
"""
import sys, random, torch
from pathlib import Path
from transformers import AutoProcessor

from single import fit, oracle_lm, sampler
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
run, params = oracle_lm(base, 9)
fit(run, params, sampler(tr), he, STEPS, KIND)
