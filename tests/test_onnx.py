"""ONNX export (`hub_upload/export_onnx.py`) and the onnxruntime runner (`onnx_runtime.py`) against PyTorch.

Runs in the `[onnx]` environment (transformers 4.57, optimum-onnx; `make compat-env`):
`.venv-onnx/bin/python -m pytest tests/test_onnx.py`. Elsewhere it is skipped: optimum-onnx requires
transformers < 4.58. The model has real-width encoders (CLIP ViT-B/16, VideoMamba-M: 1569 tokens, d_inner 1152,
state 16) with 2 layers each and a tiny random LM, so a whole export takes well under a minute on 2 cores.
"""

import math

import pytest

pytest.importorskip("optimum.exporters.onnx", reason="optimum-onnx (transformers < 4.58): run in .venv-onnx")
ort = pytest.importorskip("onnxruntime")

import numpy as np
import torch
import torch.nn.functional as F
from mobilevideogpt.tiny import tiny_config
from mobilevideogpt.hub_upload.export_onnx import QUANTIZED_SUFFIX, export_onnx
from mobilevideogpt.modeling import (
    FrameScorer,
    MobileVideoGPTConfig,
    MobileVideoGPTForConditionalGeneration,
    VideoMambaConfig,
)
from mobilevideogpt.modeling.modeling_mobilevideogpt import (
    selective_scan_exportable,
    selective_scan_sequential,
)
from mobilevideogpt.onnx_runtime import MobileVideoGPTOnnxRunner
from mobilevideogpt.processing.processing_mobilevideogpt import (
    MobileVideoGPTProcessor,
    default_image_processor,
)
from mobilevideogpt.tiny import write_video
from transformers import CLIPVisionConfig

LAYERS = 2  # per encoder; the widths are the real ones


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual.astype(np.float64) - expected).max() / np.abs(expected).max())


def export_module(module: torch.nn.Module, args: tuple, path, names: list[str], dynamic: dict) -> "ort.InferenceSession":
    torch.onnx.export(module, args, str(path), input_names=names[: len(args)], output_names=names[len(args) :],
                      dynamic_axes=dynamic, opset_version=17, dynamo=False)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


# --- parts ------------------------------------------------------------------------------------------------------


class _Scan(torch.nn.Module):
    def forward(self, u, delta, A, B, C, D):
        return selective_scan_exportable(u, delta, A, B, C, D)


@pytest.mark.parametrize("step_scale", [0.05, 1.0, 40.0])
def test_exported_scan_matches_float64_reference(tmp_path, step_scale):
    """The scan as exported (one ONNX Loop) against the sequential definition in float64, harsh steps included;
    exported at one length and run at others (dynamic)."""
    inner, state = 24, 16

    def inputs(length: int, seed: int) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(seed)
        u = torch.randn(2, inner, length, generator=g)
        delta = F.softplus(torch.randn(2, inner, length, generator=g)) * step_scale
        A = -torch.exp(torch.randn(inner, state, generator=g))
        B, C = torch.randn(2, state, length, generator=g), torch.randn(2, state, length, generator=g)
        return u, delta, A, B, C, torch.randn(inner, generator=g)

    names = ["u", "delta", "A", "B", "C", "D", "y"]
    axes = {name: {0: "batch", 2: "length"} for name in ("u", "delta", "B", "C")} | {"y": {0: "batch", 2: "length"}}
    session = export_module(_Scan(), inputs(37, 0), tmp_path / "scan.onnx", names, axes)
    import onnx

    assert "Loop" in {node.op_type for node in onnx.load(str(tmp_path / "scan.onnx")).graph.node}
    for length in (1, 37, 300):
        args = inputs(length, length)
        (y,) = session.run(None, {name: t.numpy() for name, t in zip(names, args)})
        reference = selective_scan_sequential(*(t.double() for t in args)).numpy()
        assert np.isfinite(y).all()
        assert relative_error(y, reference) < 1e-4


def test_exported_frame_scorer_breaks_ties_like_the_stable_sort(tmp_path):
    """TopK in the graph: ties go to the lower frame index, as the eager stable sort."""
    scorer = FrameScorer(chunk_size=8, frames_per_chunk=4, largest=True, precision="float16").eval()
    session = export_module(scorer, (torch.randn(2, 16, 3, 8),), tmp_path / "scorer.onnx",
                            ["features", "indices", "scores"], {"features": {0: "videos"}})
    tied = torch.zeros(3, 16, 3, 8)  # every frame scores the same
    distinct = torch.randn(3, 16, 3, 8, generator=torch.Generator().manual_seed(1))
    for features in (tied, distinct):
        indices, _ = session.run(None, {"features": features.numpy()})
        np.testing.assert_array_equal(indices, scorer(features)[0].numpy())
    assert session.run(None, {"features": tied.numpy()})[0][0].tolist() == [0, 1, 2, 3, 8, 9, 10, 11]


# --- whole model ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_tokenizer):
    """A random model with real-width CLIP ViT-B/16 and VideoMamba-M (LAYERS layers each) and a tiny LM."""
    config = tiny_config(tiny_tokenizer)
    real = MobileVideoGPTConfig()
    vision = {k: v for k, v in real.vision_config.to_dict().items() if k != "model_type"}
    config.vision_config = CLIPVisionConfig(**{**vision, "num_hidden_layers": LAYERS})
    config.video_config = VideoMambaConfig(num_hidden_layers=LAYERS)
    torch.manual_seed(0)
    model = MobileVideoGPTForConditionalGeneration(config)
    model.generation_config.eos_token_id = tiny_tokenizer.eos_token_id
    model.generation_config.pad_token_id = tiny_tokenizer.pad_token_id
    folder = tmp_path_factory.mktemp("model")
    model.save_pretrained(folder)
    MobileVideoGPTProcessor(default_image_processor(), tiny_tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def exported(model_dir, tmp_path_factory):
    return export_onnx(model_dir, tmp_path_factory.mktemp("onnx"), quantize="int8", validate=False)


@pytest.fixture(scope="module")
def model(model_dir):
    return MobileVideoGPTForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def runner(exported):
    return MobileVideoGPTOnnxRunner(exported, num_threads=2)


@pytest.fixture(scope="module")
def two_videos(runner, video_dir):
    """A batch of two clips (different lengths, so a left-padded prompt batch) whose key frames differ."""
    videos = [write_video(video_dir / f"onnx{i}.mp4", num_frames=40 + 16 * i, width=64, height=48, fps=8) for i in range(2)]
    messages = [
        [{"role": "user", "content": [{"type": "video", "path": str(v)}, {"type": "text", "text": q}]}]
        for v, q in zip(videos, ["What happens?", "Describe the moving shapes in detail."])
    ]
    return runner.processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="np", padding=True
    )


@pytest.fixture(scope="module")
def torch_features(model, two_videos):
    with torch.no_grad():
        return model.get_video_features(
            torch.from_numpy(two_videos["pixel_values_videos"]), torch.from_numpy(two_videos["pixel_values_context"])
        )


@pytest.fixture(scope="module")
def onnx_features(runner, two_videos):
    return runner.get_video_features(two_videos["pixel_values_videos"], two_videos["pixel_values_context"])


def test_layout(exported):
    names = {path.name for path in exported.iterdir()}
    for graph in ("vision_encoder", "embed_tokens", "decoder_model_merged"):
        assert {f"{graph}.onnx", f"{graph}{QUANTIZED_SUFFIX}.onnx"} <= names
    assert {"config.json", "generation_config.json", "processor_config.json", "tokenizer.json"} <= names
    assert not any(name.endswith(".safetensors") for name in names)


def test_vision_encoder_matches_pytorch_and_selects_frames_per_input(torch_features, onnx_features):
    """Batch of 2 (dynamic batch); the two videos' key frames differ, so top-K is computed, not constant."""
    indices = onnx_features["frame_indices"]
    np.testing.assert_array_equal(indices, torch_features.frame_indices.numpy())
    assert indices[0].tolist() != indices[1].tolist()
    assert relative_error(onnx_features["visual_tokens"], torch_features.visual_tokens.numpy()) < 1e-4
    assert relative_error(onnx_features["frame_scores"], torch_features.frame_scores.numpy()) < 1e-4


def test_single_video_batch(runner, two_videos, torch_features):
    features = runner.get_video_features(two_videos["pixel_values_videos"][1:], two_videos["pixel_values_context"][1:])
    np.testing.assert_array_equal(features["frame_indices"], torch_features.frame_indices[1:].numpy())


def test_decoder_logits_match_pytorch(model, runner, two_videos, torch_features, onnx_features):
    """Prompt logits of a left-padded batch, then one cached step."""
    ids, mask = two_videos["input_ids"], two_videos["attention_mask"]
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                    video_features=torch_features.visual_tokens, use_cache=True)
        next_ids = out.logits[:, -1].argmax(-1, keepdim=True)
        step = model(input_ids=next_ids, attention_mask=torch.cat([torch.from_numpy(mask), torch.ones_like(next_ids)], 1),
                     past_key_values=out.past_key_values)
    positions = np.where(mask == 0, 1, np.cumsum(mask, -1) - 1)
    logits, past = runner.decode_step(runner.embed(ids, onnx_features["visual_tokens"]), mask, positions, runner.empty_past(2))
    real = mask.astype(bool)  # padded positions are not compared
    assert relative_error(logits[real], out.logits.numpy()[real]) < 1e-4
    step_logits, _ = runner.decode_step(runner.embed(next_ids.numpy()), np.concatenate([mask, np.ones_like(mask[:, :1])], 1),
                                        positions[:, -1:] + 1, past)
    assert relative_error(step_logits, step.logits.numpy()) < 1e-4


def test_greedy_generation_gives_the_same_32_tokens(model, runner, two_videos, torch_features):
    ids, mask = two_videos["input_ids"][:1], two_videos["attention_mask"][:1]
    with torch.no_grad():
        expected = model.generate(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                                  video_features=torch_features.visual_tokens[:1], max_new_tokens=32, do_sample=False)
    generated = runner.generate(ids, mask, pixel_values_videos=two_videos["pixel_values_videos"][:1],
                                pixel_values_context=two_videos["pixel_values_context"][:1], max_new_tokens=32)
    assert generated.shape[1] - ids.shape[1] == 32
    assert generated.tolist() == expected.tolist()


def test_sampling_is_seeded_and_stays_in_the_top_k(runner, two_videos, onnx_features):
    ids, mask = two_videos["input_ids"][:1], two_videos["attention_mask"][:1]
    tokens = onnx_features["visual_tokens"][:1]
    kwargs = dict(visual_tokens=tokens, max_new_tokens=6, do_sample=True, temperature=0.8, top_k=5, top_p=0.9)
    first = runner.generate(ids, mask, seed=3, **kwargs)
    assert first.tolist() == runner.generate(ids, mask, seed=3, **kwargs).tolist()
    logits, _ = runner.decode_step(runner.embed(ids, tokens), mask, np.cumsum(mask, -1) - 1, runner.empty_past(1))
    assert first[0, ids.shape[1]] in np.argsort(logits[0, -1])[-5:]


def test_int8_graphs_run_and_drift_little(exported, two_videos, onnx_features, runner):
    quantized = MobileVideoGPTOnnxRunner(exported, processor=runner.processor, suffix=QUANTIZED_SUFFIX, num_threads=2)
    features = quantized.get_video_features(two_videos["pixel_values_videos"], two_videos["pixel_values_context"])
    drift = relative_error(features["visual_tokens"], onnx_features["visual_tokens"])
    assert math.isfinite(drift) and drift < 0.2, drift


def test_answer_from_a_video_path(runner, video_dir):
    video = write_video(video_dir / "onnx-answer.mp4", num_frames=24, width=64, height=48, fps=8)
    assert isinstance(runner.answer(video, "What happens?", max_new_tokens=4), str)


def test_fp16_export_matches_pytorch_fp16(tmp_path, tiny_tokenizer, video_dir):
    """`--dtype fp16`: the LM and projectors in fp16 (encoders fp32, as in PyTorch), same key frames, close tokens."""
    torch.manual_seed(0)
    MobileVideoGPTForConditionalGeneration(tiny_config(tiny_tokenizer)).save_pretrained(tmp_path / "model")
    MobileVideoGPTProcessor(default_image_processor(), tiny_tokenizer).save_pretrained(tmp_path / "model")
    runner = MobileVideoGPTOnnxRunner(export_onnx(tmp_path / "model", tmp_path / "onnx", dtype="fp16", validate=False))
    video = write_video(video_dir / "onnx-fp16.mp4", num_frames=40, width=64, height=48, fps=8)
    messages = [{"role": "user", "content": [{"type": "video", "path": str(video)}, {"type": "text", "text": "What?"}]}]
    inputs = runner.processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="np"
    )
    onnx = runner.get_video_features(inputs["pixel_values_videos"], inputs["pixel_values_context"])
    half = MobileVideoGPTForConditionalGeneration.from_pretrained(tmp_path / "model", dtype=torch.float16).eval()
    with torch.no_grad():
        reference = half.get_video_features(
            torch.from_numpy(inputs["pixel_values_videos"]), torch.from_numpy(inputs["pixel_values_context"])
        )
    assert onnx["visual_tokens"].dtype == np.float16
    assert np.array_equal(onnx["frame_indices"], reference.frame_indices.numpy())
    error = relative_error(onnx["visual_tokens"].astype(np.float32), reference.visual_tokens.float().numpy())
    assert error < 1e-2, error
    assert isinstance(runner.answer(video, "What happens?", max_new_tokens=4), str)
