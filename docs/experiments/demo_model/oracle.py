"""Ground-truth per-frame cell labels for the clips of write_dataset(seed) (same rng sequence, no rendering)."""
import random, sys, torch
from mobilevideogpt.training.synth import make_scene, questions, COLOURS, SHAPES, GRID
def oracle(n, seed, turns, seconds=range(0, 16, 2)):
    rng = random.Random(seed); out = {}
    for index in range(n):
        scene = make_scene(rng)
        items = questions(scene, rng)
        if turns > 1: rng.sample(items, min(turns, len(items)))
        x = torch.zeros(len(seconds), GRID * GRID, 9)
        x[:, :, 4] = 1; x[:, :, 8] = 1
        for f, s in enumerate(seconds):
            for shape, cell in zip(scene.shapes, scene.cells(s)):
                if cell is None: continue
                c, r = round(cell[0]), round(cell[1]); k = r * GRID + c
                x[f, k] = 0; x[f, k, list(COLOURS).index(shape.colour)] = 1; x[f, k, 5 + SHAPES.index(shape.kind)] = 1
        out[f"clips/{index:06d}.mp4"] = x
    return out
