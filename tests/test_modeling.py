"""Model core: each part against an independent, naive implementation of the spec, then the whole model.

Naive references are written here from the spec (reference-model.md sections 3-6), loop by loop, in float64.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import CLIPVisionConfig, Qwen2Config

from mobilevideogpt.modeling import (
    ETProjector,
    FrameScorer,
    MobileVideoGPTConfig,
    MobileVideoGPTForConditionalGeneration,
    VideoMambaConfig,
    VideoMambaEncoder,
)
from mobilevideogpt.modeling.modeling_mobilevideogpt import (
    CACHE_KWARG,
    selective_scan_blockwise,
    selective_scan_sequential,
)

IMAGE_TOKEN, VIDEO_TOKEN, VOCAB = 250, 251, 256


def tiny_config(**overrides) -> MobileVideoGPTConfig:
    return MobileVideoGPTConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, image_size=224, patch_size=16
        ),
        video_config=VideoMambaConfig(hidden_size=24, num_hidden_layers=2, state_size=4),
        text_config=Qwen2Config(
            vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1e6, eos_token_id=2, pad_token_id=0,
        ),
        image_token_id=IMAGE_TOKEN,
        video_token_id=VIDEO_TOKEN,
        **overrides,
    )


@pytest.fixture(scope="module")
def model() -> MobileVideoGPTForConditionalGeneration:
    torch.manual_seed(0)
    return MobileVideoGPTForConditionalGeneration(tiny_config()).eval()


def video_prompt(config: MobileVideoGPTConfig, before: list[int], after: list[int]) -> list[int]:
    return before + [config.video_token_id] * config.visual_tokens_per_video + after


def random_video(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 16, 3, 224, 224, generator=g), torch.randn(1, 16, 3, 224, 224, generator=g)


# --- selective scan -------------------------------------------------------------------------------------------


def naive_scan(u, delta, A, B, C, D):
    """Spec 3.4 step 5, one scalar state at a time, float64."""
    batch, inner, length = u.shape
    y = torch.zeros(batch, inner, length, dtype=torch.float64)
    for b in range(batch):
        h = torch.zeros(inner, A.shape[1], dtype=torch.float64)
        for t in range(length):
            h = torch.exp(delta[b, :, t, None] * A) * h + delta[b, :, t, None] * B[b, None, :, t] * u[b, :, t, None]
            y[b, :, t] = (C[b, None, :, t] * h).sum(-1) + D * u[b, :, t]
    return y


@pytest.mark.parametrize("length", [1, 5, 64, 65, 200, 301])
@pytest.mark.parametrize("step_scale", [0.05, 1.0, 40.0])
def test_blockwise_scan_matches_float64_reference(length, step_scale):
    g = torch.Generator().manual_seed(length)
    inner, state = 12, 5
    u = torch.randn(2, inner, length, generator=g)
    delta = F.softplus(torch.randn(2, inner, length, generator=g)) * step_scale
    A = -torch.exp(torch.randn(inner, state, generator=g))
    B, C = torch.randn(2, state, length, generator=g), torch.randn(2, state, length, generator=g)
    D = torch.randn(inner, generator=g)
    reference = naive_scan(*(t.double() for t in (u, delta, A, B, C, D)))
    fast = selective_scan_blockwise(u, delta, A, B, C, D)
    assert fast.dtype == torch.float32
    assert torch.isfinite(fast).all()
    rel = (fast.double() - reference).abs().max() / reference.abs().max()
    assert rel < 1e-4, rel
    sequential = selective_scan_sequential(*(t.double() for t in (u, delta, A, B, C, D)))
    assert torch.allclose(sequential, reference, rtol=1e-10, atol=1e-10)


# --- VideoMamba -----------------------------------------------------------------------------------------------


def naive_videomamba(encoder: VideoMambaEncoder, pixels: torch.Tensor) -> torch.Tensor:
    """Spec 3.2-3.4 written out: per-frame patches, CLS without temporal embedding, time-major tokens,
    pre-norm blocks with a float64 residual, bidirectional mixers with per-direction parameters summed."""
    cfg = encoder.config
    p = {k: v.double() for k, v in encoder.state_dict().items()}
    frames = pixels.shape[1]
    side, ps = cfg.patches_per_side, cfg.patch_size
    tokens = [p["cls_token"][0, 0] + p["pos_embed"][0, 0]]
    for t in range(frames):
        for row in range(side):
            for col in range(side):
                patch = pixels[0, t, :, row * ps : (row + 1) * ps, col * ps : (col + 1) * ps].double()
                w = p["patch_embed.proj.weight"][:, :, 0]
                emb = (w * patch).sum((1, 2, 3)) + p["patch_embed.proj.bias"] + p["pos_embed"][0, 1 + row * side + col]
                if frames > 1:
                    emb = emb + p["temporal_pos_embedding"][0, t]
                tokens.append(emb)
    r = torch.stack(tokens)  # (L, d)

    def rms(x, w):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + cfg.rms_norm_eps) * w

    def branch(x, z, pre, sfx):
        L = x.shape[0]
        w, b = p[f"{pre}conv1d{sfx}.weight"][:, 0], p[f"{pre}conv1d{sfx}.bias"]
        k = w.shape[1]
        conv = torch.stack([b + sum(w[:, j] * x[t - k + 1 + j] for j in range(k) if t - k + 1 + j >= 0) for t in range(L)])
        a = conv * torch.sigmoid(conv)
        dbl = a @ p[f"{pre}x_proj{sfx}.weight"].T
        dt, Bm, Cm = dbl.split([cfg.time_step_rank, cfg.state_size, cfg.state_size], -1)
        delta = F.softplus(dt @ p[f"{pre}dt_proj{sfx}.weight"].T + p[f"{pre}dt_proj{sfx}.bias"])
        A = -torch.exp(p[f"{pre}A{'_b' if sfx else ''}_log"])
        D = p[f"{pre}D{sfx}"]
        y = naive_scan(a.T[None], delta.T[None], A, Bm.T[None], Cm.T[None], D)[0].T
        return y * (z * torch.sigmoid(z))

    for i in range(cfg.num_hidden_layers):
        pre = f"layers.{i}.mixer."
        u = rms(r, p[f"layers.{i}.norm.weight"])
        x, z = (u @ p[pre + "in_proj.weight"].T).chunk(2, -1)
        fwd = branch(x, z, pre, "")
        bwd = branch(x.flip(0), z.flip(0), pre, "_b").flip(0)
        r = r + (fwd + bwd) @ p[pre + "out_proj.weight"].T
    return rms(r, p["norm.weight"])[None]


@pytest.mark.parametrize("frames", [8, 1])
def test_videomamba_matches_naive_spec(frames):
    torch.manual_seed(1)
    cfg = VideoMambaConfig(hidden_size=16, num_hidden_layers=2, state_size=3, image_size=64, patch_size=16)
    encoder = VideoMambaEncoder(cfg)
    with torch.no_grad():  # non-trivial values everywhere (init leaves some zeros)
        for param in encoder.parameters():
            param.copy_(torch.randn_like(param) * 0.3)
        for i in range(cfg.num_hidden_layers):
            mixer = encoder.layers[i].mixer
            mixer.A_log.copy_(torch.rand_like(mixer.A_log))
            mixer.A_b_log.copy_(torch.rand_like(mixer.A_b_log))
    pixels = torch.randn(1, frames, 3, 64, 64)
    with torch.no_grad():
        out = encoder(pixels)
    assert out.shape == (1, 1 + frames * 16, 16)
    reference = naive_videomamba(encoder, pixels)
    rel = (out.double() - reference).abs().max() / reference.abs().max()
    assert rel < 1e-4, rel


# --- frame scoring --------------------------------------------------------------------------------------------


def naive_frame_scores(features: torch.Tensor, chunk: int) -> torch.Tensor:
    """Spec 4 steps 1-4 for one video (F, P, D), float64 loops over chunks and frames."""
    frames, tokens, dim = features.shape
    scores = torch.zeros(frames, dtype=torch.float64)
    for c in range(frames // chunk):
        x = features[c * chunk : (c + 1) * chunk].double().reshape(chunk * tokens, dim)
        attention = torch.softmax(x @ x.T / math.sqrt(dim), dim=-1)
        for j in range(chunk):
            scores[c * chunk + j] = attention[:, j * tokens : (j + 1) * tokens].sum()
    return scores


def naive_selection(scores: torch.Tensor, chunk: int, k: int, largest: bool) -> list[int]:
    chosen = []
    for c in range(len(scores) // chunk):
        local = sorted(range(chunk), key=lambda j: (-scores[c * chunk + j] if largest else scores[c * chunk + j], j))
        chosen += sorted(c * chunk + j for j in local[:k])
    return chosen


@pytest.mark.parametrize("largest", [True, False])
def test_frame_scorer_matches_naive_loop(largest):
    g = torch.Generator().manual_seed(3)
    features = torch.randn(3, 16, 20, 24, generator=g) * 2
    scorer = FrameScorer(chunk_size=8, frames_per_chunk=4, largest=largest, precision="float32")
    indices, scores = scorer(features)
    for v in range(3):
        reference = naive_frame_scores(features[v], 8)
        assert torch.allclose(scores[v].double(), reference, rtol=1e-5)
        assert indices[v].tolist() == naive_selection(reference.tolist(), 8, 4, largest)
    assert torch.allclose(scores.reshape(3, 2, 8).sum(-1), torch.full((3, 2), 8.0 * 20), rtol=1e-5)


def test_frame_scorer_ties_go_to_lower_index_and_fp16_mode_quantises():
    frame = torch.randn(1, 1, 10, 16)
    features = frame.expand(1, 16, 10, 16).clone()  # identical frames: exact ties everywhere
    for precision in ("float32", "float16"):
        indices, scores = FrameScorer(8, 4, True, precision)(features)
        assert indices.tolist() == [[0, 1, 2, 3, 8, 9, 10, 11]]
    g = torch.Generator().manual_seed(5)
    features = torch.randn(2, 16, 30, 32, generator=g)
    _, scores16 = FrameScorer(8, 4, True, "float16")(features)
    assert torch.equal(scores16, scores16.half().float())  # every score is an fp16 value
    _, scores32 = FrameScorer(8, 4, True, "float32")(features)
    assert torch.allclose(scores16, scores32, rtol=2e-3)


# --- ET-Proj ----------------------------------------------------------------------------------------------------


def naive_etp(projector: ETProjector, tokens: torch.Tensor, cells: list[tuple[int, list[int]]], grid: int) -> torch.Tensor:
    """FFN per token, then each output cell = mean of its listed token indices, then 3x3 depthwise conv + skip."""
    sd = {k: v.double() for k, v in projector.state_dict().items()}
    y = F.gelu(tokens.double() @ sd["fc1.weight"].T + sd["fc1.bias"]) @ sd["fc2.weight"].T + sd["fc2.bias"]
    pooled = torch.zeros(grid, grid, y.shape[-1], dtype=torch.float64)
    for cell, members in cells:
        pooled[cell // grid, cell % grid] = y[members].mean(0)
    out = pooled.clone()
    w, b = sd["pos_conv.weight"][:, 0], sd["pos_conv.bias"]
    for r in range(grid):
        for c in range(grid):
            acc = b.clone()
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    if 0 <= r + dr < grid and 0 <= c + dc < grid:
                        acc += w[:, dr + 1, dc + 1] * pooled[r + dr, c + dc]
            out[r, c] += acc
    return out.reshape(grid * grid, -1)


def test_video_etp_pseudo_grid_by_hand():
    torch.manual_seed(2)
    projector = ETProjector(10, 6, pool_size=7)
    tokens = torch.randn(196, 10)  # 4 key frames x 49 tokens, m = 49 f + 7 y + x
    # Spec 5.3: output cell (R, Q) averages tokens 28R + 2Q + {0, 1, 14, 15} of the 14x14 pseudo-grid.
    cells = [(7 * R + Q, [28 * R + 2 * Q + o for o in (0, 1, 14, 15)]) for R in range(7) for Q in range(7)]
    with torch.no_grad():
        out = projector(tokens[None])[0]
    assert torch.allclose(out.double(), naive_etp(projector, tokens, cells, 7), atol=1e-5)


def test_image_etp_overlapping_windows_by_hand():
    torch.manual_seed(4)
    projector = ETProjector(10, 6, pool_size=12)
    tokens = torch.randn(196, 10)
    starts = [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]  # spec 5.2: 2x2 windows of adaptive pooling 14 -> 12
    cells = [
        (12 * i + j, [14 * (starts[i] + a) + starts[j] + b for a in (0, 1) for b in (0, 1)])
        for i in range(12)
        for j in range(12)
    ]
    with torch.no_grad():
        out = projector(tokens[None])[0]
    assert torch.allclose(out.double(), naive_etp(projector, tokens, cells, 12), atol=1e-5)


# --- the assembled model ------------------------------------------------------------------------------------------


def test_video_features_follow_the_spec_data_flow(model):
    """Spec 1.1 steps 3-14 glued by hand from the submodules: CLIP layer -2 without CLS, scoring per chunk,
    ONE VideoMamba clip of the 8 key frames, 2x2 pooling, pseudo-grid video ETP, image tokens first."""
    inner = model.model
    videos, context = random_video(7)
    with torch.no_grad():
        features = model.get_video_features(videos, context)
        # the library's own CLIP forward (all layers), not the model's truncated loop
        states = inner.image_encoder(context[0], output_hidden_states=True).hidden_states
        clip = states[-2][:, 1:]  # (16, 196, 32)
        reference_scores = naive_frame_scores(clip.half().float(), 8)
        chosen = features.frame_indices[0].tolist()
        assert chosen == naive_selection(features.frame_scores[0].tolist(), 8, 4, True)
        assert torch.allclose(features.frame_scores[0].double(), reference_scores, rtol=2e-3)
        mamba = inner.video_encoder(videos[0, chosen][None])[0, 1:]  # (8 * 196, 24)
        pooled = torch.stack([F.avg_pool2d(mamba[f * 196 : (f + 1) * 196].T.reshape(24, 14, 14), 2) for f in range(8)])
        pooled = pooled.flatten(2).transpose(1, 2)  # (8, 49, 24)
        chunk_tokens = torch.stack([torch.cat(list(pooled[4 * c : 4 * c + 4])) for c in range(2)])  # (2, 196, 24)
        expected = torch.cat([inner.image_projector(clip).reshape(-1, 64), inner.video_projector(chunk_tokens).reshape(-1, 64)])
    assert features.visual_tokens.shape == (1, 16 * 144 + 2 * 49, 64)
    assert torch.allclose(features.visual_tokens[0], expected, atol=1e-5)


def test_placeholder_count_mismatch_raises(model):
    videos, context = random_video(1)
    ids = torch.tensor([video_prompt(model.config, [5, 6], [7])])
    with pytest.raises(ValueError, match="2401 video placeholder tokens"):
        model(input_ids=ids[:, 1:-2], pixel_values_videos=videos, pixel_values_context=context)
    with pytest.raises(ValueError, match="image placeholder"):
        model(input_ids=torch.tensor([[5, 6, IMAGE_TOKEN, 7]]), pixel_values=torch.randn(1, 3, 224, 224))
    with pytest.raises(ValueError, match="both pixel_values_videos"):
        model(input_ids=ids, pixel_values_videos=videos)


def test_batch_with_left_padding_equals_single_runs(model):
    cfg = model.config
    prompts = [video_prompt(cfg, [5, 6, 7, 8, 9], [10, 11]), video_prompt(cfg, [5], [12, 13, 14, 15])]
    clips = [random_video(11), random_video(12)]
    singles = []
    for prompt, (videos, context) in zip(prompts, clips):
        out = model.generate(
            input_ids=torch.tensor([prompt]), pixel_values_videos=videos, pixel_values_context=context,
            max_new_tokens=6, do_sample=False, pad_token_id=0,
        )
        singles.append(out[0, len(prompt) :].tolist())
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    batched = model.generate(
        input_ids=ids, attention_mask=mask, pixel_values_videos=torch.cat([c[0] for c in clips]),
        pixel_values_context=torch.cat([c[1] for c in clips]), max_new_tokens=6, do_sample=False, pad_token_id=0,
    )
    assert batched[:, width:].tolist() == singles


def test_follow_up_with_cached_video_features_equals_recomputation(model):
    videos, context = random_video(21)
    first_turn = video_prompt(model.config, [5, 6], [7, 8])
    with torch.no_grad():
        out = model(input_ids=torch.tensor([first_turn]), pixel_values_videos=videos, pixel_values_context=context)
    follow_up = torch.tensor([first_turn + [9, 10, 11, 12]])
    full = model.generate(
        input_ids=follow_up, pixel_values_videos=videos, pixel_values_context=context, max_new_tokens=5, do_sample=False
    )
    cached = model.generate(input_ids=follow_up, video_features=out.video_features, max_new_tokens=5, do_sample=False)
    assert torch.equal(full, cached)
    with torch.no_grad():
        a = model(input_ids=follow_up, pixel_values_videos=videos, pixel_values_context=context).logits
        b = model(input_ids=follow_up, video_features=out.video_features.visual_tokens).logits
    assert torch.equal(a, b)


def test_image_and_text_only_generation(model):
    image_prompt = torch.tensor([[5] + [IMAGE_TOKEN] * 144 + [6, 7]])
    out = model.generate(input_ids=image_prompt, pixel_values=torch.randn(1, 3, 224, 224), max_new_tokens=3, do_sample=False)
    assert out.shape == (1, 147 + 3)
    text = model.generate(input_ids=torch.tensor([[5, 6, 7]]), max_new_tokens=3, do_sample=False)
    assert text.shape == (1, 6)
    # beam search and sampling run through the same path
    model.generate(input_ids=torch.tensor([[5, 6, 7]]), max_new_tokens=3, num_beams=2, do_sample=False)
    model.generate(input_ids=torch.tensor([[5, 6, 7]]), max_new_tokens=3, do_sample=True, top_p=0.9, temperature=0.7)


def test_repetition_penalty_counts_only_generated_tokens(model):
    """Spec Q-19: the original's penalty never sees the prompt. Greedy by hand with a KV cache, penalising only
    tokens generated so far, must equal generate()."""
    videos, context = random_video(71)
    prompt = torch.tensor([video_prompt(model.config, list(range(5, 40)), list(range(40, 60)))])
    penalty, steps = 5.0, 8
    with torch.no_grad():
        out = model(input_ids=prompt, pixel_values_videos=videos, pixel_values_context=context, use_cache=True)
        generated = []
        for _ in range(steps):
            scores = out.logits[0, -1].clone()
            for token in set(generated):
                scores[token] = scores[token] * penalty if scores[token] < 0 else scores[token] / penalty
            generated.append(int(scores.argmax()))
            out = model(input_ids=torch.tensor([[generated[-1]]]), past_key_values=out.past_key_values, use_cache=True)
    result = model.generate(
        input_ids=prompt, pixel_values_videos=videos, pixel_values_context=context, max_new_tokens=steps,
        do_sample=False, repetition_penalty=penalty,
    )
    assert result[0, prompt.shape[1] :].tolist() == generated
    assert set(generated) & set(prompt[0].tolist())  # some answer tokens are prompt tokens: the test has teeth


@pytest.mark.parametrize("cache_argument", ["past_key_values", "cache"])  # transformers >= 5.24 passes `cache`
def test_forward_logits_match_step_by_step_kv_cache(model, cache_argument):
    videos, context = random_video(31)
    ids = torch.tensor([video_prompt(model.config, [5, 6], [7, 8, 9])])
    with torch.no_grad():
        prefix = model(input_ids=ids[:, :-2], pixel_values_videos=videos, pixel_values_context=context, use_cache=True)
        cache = getattr(prefix, CACHE_KWARG)  # the output field has the installed transformers' name
        step = model(input_ids=ids[:, -2:], use_cache=True, **{cache_argument: cache})
        whole = model(input_ids=ids, pixel_values_videos=videos, pixel_values_context=context)
    assert torch.allclose(step.logits, whole.logits[:, -2:], atol=1e-4)


def test_loss_falls_with_training():
    torch.manual_seed(0)
    model = MobileVideoGPTForConditionalGeneration(tiny_config()).train()
    model.gradient_checkpointing_enable()
    videos, context = random_video(41)
    ids = torch.tensor([video_prompt(model.config, [5, 6], [7, 8, 9, 10, 11, 12])])
    labels = torch.full_like(ids, -100)
    labels[:, -6:] = ids[:, -6:]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(8):
        loss = model(input_ids=ids, pixel_values_videos=videos, pixel_values_context=context, labels=labels).loss
        assert torch.isfinite(loss)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.8, losses


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_keeps_encoders_in_float32(tmp_path, model, dtype):
    model.save_pretrained(tmp_path)
    half = MobileVideoGPTForConditionalGeneration.from_pretrained(tmp_path, dtype=dtype).eval()
    assert half.model.language_model.embed_tokens.weight.dtype == dtype
    assert half.model.image_encoder.embeddings.patch_embedding.weight.dtype == torch.float32
    assert half.model.video_encoder.layers[0].mixer.A_log.dtype == torch.float32
    videos, context = random_video(51)
    ids = torch.tensor([video_prompt(model.config, [5], [6])])
    with torch.no_grad():
        logits = half(input_ids=ids, pixel_values_videos=videos, pixel_values_context=context).logits
        reference = model(input_ids=ids, pixel_values_videos=videos, pixel_values_context=context).logits
    assert logits.dtype == dtype and torch.isfinite(logits).all()
    assert torch.allclose(logits.float(), reference, atol=0.1)


def test_eager_and_sdpa_attention_agree(tmp_path, model):
    model.save_pretrained(tmp_path)
    videos, context = random_video(61)
    ids = torch.tensor([video_prompt(model.config, [5], [6, 7])])
    logits = {}
    for impl in ("eager", "sdpa"):
        m = MobileVideoGPTForConditionalGeneration.from_pretrained(tmp_path, attn_implementation=impl).eval()
        with torch.no_grad():
            logits[impl] = m(input_ids=ids, pixel_values_videos=videos, pixel_values_context=context).logits
    assert torch.allclose(logits["eager"], logits["sdpa"], atol=1e-4)


def test_save_load_roundtrip_and_tied_embeddings(tmp_path, model):
    from safetensors.torch import load_file

    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "model.safetensors")
    assert "lm_head.weight" not in saved  # tied: stored once
    assert any(k.startswith("model.image_encoder.encoder.layers.0.") for k in saved)
    reloaded = MobileVideoGPTForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert reloaded.lm_head.weight.data_ptr() == reloaded.model.language_model.embed_tokens.weight.data_ptr()
    for (name, a), (_, b) in zip(model.state_dict().items(), reloaded.state_dict().items()):
        assert torch.equal(a, b), name

    untied_cfg = tiny_config()
    untied_cfg.tie_word_embeddings = untied_cfg.text_config.tie_word_embeddings = False
    untied = MobileVideoGPTForConditionalGeneration(untied_cfg)
    assert untied.lm_head.weight.data_ptr() != untied.model.language_model.embed_tokens.weight.data_ptr()
    untied.save_pretrained(tmp_path / "untied")
    assert "lm_head.weight" in load_file(tmp_path / "untied" / "model.safetensors")


def test_config_defaults_are_the_published_model():
    cfg = MobileVideoGPTConfig()
    assert cfg.visual_tokens_per_video == 2402
    assert (cfg.text_config.hidden_size, cfg.text_config.num_hidden_layers, cfg.text_config.vocab_size) == (896, 24, 151936)
    assert (cfg.vision_config.hidden_size, cfg.vision_config.num_hidden_layers, cfg.vision_config.hidden_act) == (768, 12, "quick_gelu")
    vm = cfg.video_config
    assert (vm.hidden_size, vm.num_hidden_layers, vm.intermediate_size, vm.time_step_rank, vm.num_frames) == (576, 32, 1152, 36, 8)
    big = MobileVideoGPTConfig.from_preset("1.5b")
    assert (big.text_config.hidden_size, big.text_config.num_hidden_layers) == (1536, 28)
    with pytest.raises(ValueError, match="VideoMamba takes exactly"):
        MobileVideoGPTConfig(frames_per_chunk=3)
    with torch.device("meta"):
        real = MobileVideoGPTForConditionalGeneration(cfg)
    counts = {name: sum(p.numel() for p in getattr(real.model, name).parameters()) for name in
              ("video_encoder", "image_projector", "video_projector", "language_model")}
    # Spec 3.7 / 5.1 / 7.1 parameter counts (VideoMamba without the unused clip_decoder).
    assert counts == {"video_encoder": 73_645_056, "image_projector": 1_501_696, "video_projector": 1_329_664,
                      "language_model": 494_032_768}
