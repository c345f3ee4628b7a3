"""int8 path (`mobilevideogpt.quantize`) and the physical-limit arithmetic of `benchmarks/run.py`, on a tiny model.

No timings are asserted: these run in a few seconds."""

import importlib.util
from pathlib import Path

import pytest
import torch
from transformers import CLIPVisionConfig, Qwen2Config

from mobilevideogpt.modeling import MobileVideoGPTConfig, MobileVideoGPTForConditionalGeneration
from mobilevideogpt.modeling.configuration_mobilevideogpt import VideoMambaConfig
from mobilevideogpt.quantize import int8_linear_count, quantize_int8

VOCAB, HIDDEN, INTERMEDIATE, LAYERS, HEADS, KV_HEADS = 512, 64, 96, 2, 4, 2


def _run_module():
    spec = importlib.util.spec_from_file_location("bench_run", Path(__file__).parents[1] / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_model(tie: bool = True, seed: int = 0) -> MobileVideoGPTForConditionalGeneration:
    config = MobileVideoGPTConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
        video_config=VideoMambaConfig(hidden_size=24, num_hidden_layers=2, state_size=4),
        text_config=Qwen2Config(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
                                num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                                tie_word_embeddings=tie, eos_token_id=2, pad_token_id=0),
        image_token_id=VOCAB - 2, video_token_id=VOCAB - 1,
    )
    torch.manual_seed(seed)
    model = MobileVideoGPTForConditionalGeneration(config).eval()
    with torch.no_grad():  # larger weights than the 0.02 init: logits with margins, as trained models have
        for name, param in model.model.language_model.named_parameters():
            if param.dim() == 2:
                param.normal_(0, 0.5 / param.shape[-1] ** 0.5)
    return model


def test_int8_quantizes_lm_and_head_only_and_stays_close():
    fp32 = tiny_model()
    int8 = quantize_int8(tiny_model())
    # 7 linears per layer (q, k, v, o, gate, up, down) and the head; encoders and projectors untouched.
    assert int8_linear_count(int8) == 7 * LAYERS + 1
    assert type(int8.model.image_projector.fc1) is torch.nn.Linear
    assert int8.model.language_model.embed_tokens.weight.dtype == torch.float32
    assert torch.equal(int8.model.language_model.embed_tokens.weight, fp32.model.language_model.embed_tokens.weight)
    assert int8.config.tie_word_embeddings is False

    ids = torch.randint(3, VOCAB - 3, (1, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = fp32(input_ids=ids).logits, int8(input_ids=ids).logits
        assert float((a - b).abs().max() / a.abs().max()) < 0.1
        assert float((a.argmax(-1) == b.argmax(-1)).float().mean()) >= 0.9
        kwargs = dict(input_ids=ids, max_new_tokens=8, min_new_tokens=8, do_sample=False)
        greedy_a, greedy_b = fp32.generate(**kwargs)[0, 24:], int8.generate(**kwargs)[0, 24:]
    assert (greedy_a == greedy_b).float().mean() >= 0.75


def test_int8_untied_head_is_its_own_matrix():
    model = quantize_int8(tiny_model(tie=False))
    assert int8_linear_count(model) == 7 * LAYERS + 1
    with torch.no_grad():
        assert model.generate(input_ids=torch.tensor([[5, 6, 7]]), max_new_tokens=3, do_sample=False).shape == (1, 6)


def test_decode_weight_bytes_counts_each_weight_once():
    run = _run_module()
    head_dim = HIDDEN // HEADS
    attention = HIDDEN * HIDDEN * 2 + 2 * HIDDEN * KV_HEADS * head_dim  # q, o; k, v
    biases = HIDDEN + 2 * KV_HEADS * head_dim  # Qwen2's q, k, v biases
    mlp = 3 * HIDDEN * INTERMEDIATE
    norms = 2 * HIDDEN
    per_layer = attention + biases + mlp + norms
    head, row = VOCAB * HIDDEN, HIDDEN  # the head matrix once (tied to the table), one embedding row
    fp32_expected = 4 * (LAYERS * per_layer + HIDDEN + head + row)
    assert run.decode_weight_bytes(tiny_model(tie=True)) == fp32_expected
    assert run.decode_weight_bytes(tiny_model(tie=False)) == fp32_expected  # the untied table is not read whole

    int8_expected = LAYERS * ((attention + mlp) + 4 * (biases + norms)) + 4 * HIDDEN + head + 4 * row
    assert run.decode_weight_bytes(quantize_int8(tiny_model())) == int8_expected


def test_prefill_flops_and_kv_bytes():
    run = _run_module()
    config = Qwen2Config(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936)
    tokens = 2437
    linear = 896 * 896 * 2 + 2 * 896 * 128 + 3 * 896 * 4864  # per layer
    expected = 24 * (2 * linear * tokens + 2 * tokens**2 * 896) + 2 * 896 * 151936
    assert run.prefill_flops(config, tokens) == expected
    assert run.prefill_flops(config, tokens) == pytest.approx(2.0e12, rel=0.05)  # ~2 TFLOP for the video prompt
    assert run.kv_bytes_per_token(config, 1000) == 2 * 24 * 2 * 64 * 1000 * 4
