"""Cache frozen-encoder features for the diagnostic loop."""
import sys, torch, time
import numpy as np
from pathlib import Path
from mobilevideogpt.training.synth import write_dataset
from mobilevideogpt.training.demo_model import build_base
from mobilevideogpt.training.data import SupervisedDataset
from transformers import AutoModel, AutoProcessor
from single import frozen_features
w = Path(sys.argv[1]); n = int(sys.argv[2])
if __import__("os").environ.get("TIME_RAMP"):  # experiment: the background brightens by 120 grey levels over the clip
    from mobilevideogpt.training import synth
    plain = synth.render
    def render(scene):
        frames = plain(scene).astype(int)
        ramp = ((np.arange(len(frames)) / (len(frames) - 1) - 0.5) * 120).astype(int)
        background = (frames == synth.BACKGROUND).all(-1, keepdims=True)
        return (frames + background * ramp[:, None, None, None]).clip(0, 255).astype("uint8")
    synth.render = render
torch.set_num_threads(int(__import__("os").environ.get("NT", "2")))
t = time.perf_counter()
train = write_dataset(w / "train", n, seed=0, turns=6)
held = write_dataset(w / "held_out", 100, seed=10_000, turns=1)
print("synth", time.perf_counter() - t)
base = w / "base" if (w / "base" / "config.json").exists() else build_base(w / "base", 0)  # or base_variant.py's
proc = AutoProcessor.from_pretrained(base, trust_remote_code=True)
model = AutoModel.from_pretrained(base, trust_remote_code=True).eval()
m = model.model
for name, path in (("train", train), ("held", held)):
    ds = SupervisedDataset(path, proc)
    recs = []
    cache = {}
    for i in range(len(ds)):
        item = ds[i]
        vid = ds.records[i]["video"]
        if vid not in cache:
            pv, pc = item["pixel_values_videos"][None], item["pixel_values_context"][None]
            clip, chunk, idx = frozen_features(m, pv, pc)
            cache[vid] = (clip.half(), chunk.half(), idx)
        recs.append(dict(input_ids=item["input_ids"], labels=item["labels"], video=vid, types=ds.records[i]["types"],
                         answer=ds.records[i]["conversations"][-1]["value"]))
    torch.save(dict(recs=recs, cache=cache), w / f"{name}.pt")
    print(name, len(recs), time.perf_counter() - t)
