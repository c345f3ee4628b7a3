"""The demo-model base (`build_base`, seed 0) with where and when made easier to read: CLIP position embeddings as
2-D sines and cosines at the scale of a coloured patch's embedding, and another RoPE base for the LM.

    python base_variant.py FOLDER ROPE_THETA [sincos|random]
"""
import json, math, sys, torch
from pathlib import Path
from transformers import AutoModel
from mobilevideogpt.training.demo_model import build_base

folder, theta = Path(sys.argv[1]), float(sys.argv[2]); pos = sys.argv[3] if len(sys.argv) > 3 else "sincos"
build_base(folder, 0)
config = json.loads((folder / "config.json").read_text()); text = config["text_config"]
if "rope_parameters" in text: text["rope_parameters"]["rope_theta"] = theta  # transformers 5
else: text["rope_theta"] = theta
(folder / "config.json").write_text(json.dumps(config, indent=2))
model = AutoModel.from_pretrained(folder, trust_remote_code=True)
table = model.model.image_encoder.embeddings.position_embedding.weight  # (1 + 14 * 14, 64)
if pos == "sincos":
    width, side = table.shape[1], 14
    freqs = torch.logspace(-1, math.log10(1.5), width // 4)  # radians per patch: 1.4 to 21 over the 14 patches
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    def axis(p): a = p.flatten()[:, None].float() * freqs; return torch.cat([a.sin(), a.cos()], 1)
    with torch.no_grad(): table[1:] = torch.cat([axis(cols), axis(rows)], 1) * (5.5 / math.sqrt(width / 2))
    model.save_pretrained(folder)
print(folder, model.config.text_config, pos, table[1:].norm(dim=-1).mean().item())
