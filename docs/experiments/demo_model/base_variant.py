"""The demo-model base with where and when made easier to read: CLIP position embeddings as 2-D sines and cosines
at the scale of a coloured patch's embedding, and the LM's RoPE base.

    python base_variant.py FOLDER ROPE_THETA [sincos|random]
"""
import math, sys, torch
from pathlib import Path
from mobilevideogpt.modeling import MobileVideoGPTForConditionalGeneration, VideoMambaConfig
from mobilevideogpt.tiny import build_tiny_tokenizer, save_model_folder, tiny_config
from mobilevideogpt.training.demo_model import IMAGE_POOL_SIZE, VIDEO_POOL_SIZE

folder, theta = Path(sys.argv[1]), float(sys.argv[2]); pos = sys.argv[3] if len(sys.argv) > 3 else "sincos"
tokenizer = build_tiny_tokenizer(); torch.manual_seed(0)
config = tiny_config(
    tokenizer, clip_layers=1, lm_hidden=128, lm_intermediate=384, lm_layers=4,
    image_pool_size=IMAGE_POOL_SIZE, video_pool_size=VIDEO_POOL_SIZE, frame_scoring_precision="float32",
    num_frames=8, chunk_size=8, frames_per_chunk=4,
    video_config=VideoMambaConfig(hidden_size=48, num_hidden_layers=2, state_size=8, patch_size=32, num_frames=4),
)
text = config.text_config
if getattr(text, "rope_parameters", None) is not None: text.rope_parameters["rope_theta"] = theta
else: text.rope_theta = theta
model = MobileVideoGPTForConditionalGeneration(config)
torch.nn.init.normal_(model.get_input_embeddings().weight, std=0.1)
for module in model.model.language_model.modules():
    if isinstance(module, torch.nn.Linear): torch.nn.init.normal_(module.weight, std=module.in_features**-0.5)
if pos == "sincos":
    table = model.model.image_encoder.embeddings.position_embedding.weight  # (1 + 14 * 14, 64)
    width, side = table.shape[1], 14
    freqs = torch.logspace(-1, math.log10(1.5), width // 4)  # radians per patch: 1.4 to 21 over the 14 patches
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    def axis(p): a = p.flatten()[:, None].float() * freqs; return torch.cat([a.sin(), a.cos()], 1)
    with torch.no_grad(): table[1:] = torch.cat([axis(cols), axis(rows)], 1) * (5.5 / math.sqrt(width / 2))
save_model_folder(model, tokenizer, folder)
print(folder, theta, pos, model.model.image_encoder.embeddings.position_embedding.weight[1:].norm(dim=-1).mean().item())
