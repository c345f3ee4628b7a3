"""Conversion of the original release: synthetic checkpoints in the ORIGINAL layout (original key names and config
fields, tiny widths) converted, then compared with the model they were made from; and every refusal case."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoModel, CLIPConfig, CLIPModel

from mobilevideogpt.cli import main as mvgpt
from mobilevideogpt.tiny import tiny_config
from mobilevideogpt.hub_upload import ConversionError, convert
from mobilevideogpt.modeling import MobileVideoGPTForConditionalGeneration

from test_modeling import random_video


def original_layout(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """Our state dict -> (Mobile-VideoGPT repo tensors, VideoMamba tensors), with the original's key names
    (spec 3.7, 5.1, 8.2) written out here independently of the converter's table."""
    repo, tower = {}, {}
    for key, value in state.items():
        if key.startswith("model.language_model."):
            repo["model." + key[len("model.language_model.") :]] = value
        elif key.startswith("model.video_encoder."):
            tower[key[len("model.video_encoder.") :]] = value
        elif key.startswith(("model.video_projector.", "model.image_projector.")):
            which, part = key.split(".")[1], ".".join(key.split(".")[2:])
            part = part.replace("fc1.", "mlp.mlp.0.").replace("fc2.", "mlp.mlp.2.").replace("pos_conv.", "peg.peg.0.")
            repo[f"model.{'mm_projector' if which == 'video_projector' else 'image_mm_projector'}.{part}"] = value
    return repo, tower


@pytest.fixture(scope="module")
def release(tmp_path_factory, tiny_tokenizer):
    """A reference model and the folders of a fake release made from its tensors."""
    root = tmp_path_factory.mktemp("release")
    torch.manual_seed(0)
    config = tiny_config(tiny_tokenizer)
    clip_config = CLIPConfig(
        text_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=99),
        vision_config=config.vision_config.to_dict(),
        projection_dim=8,
    )
    clip = CLIPModel(clip_config)
    clip.save_pretrained(root / "clip")
    reference = MobileVideoGPTForConditionalGeneration(config).eval()
    with torch.no_grad():  # the CLIP tower as the CLIP checkpoint has it; non-trivial values elsewhere
        for name, param in reference.named_parameters():
            if name.startswith("model.image_encoder."):
                param.copy_(clip.state_dict()["vision_model." + name[len("model.image_encoder.") :]])
            elif "A_log" in name or "A_b_log" in name:
                param.copy_(torch.rand_like(param))
            elif "norm" in name or "bias" in name:
                param.add_(torch.randn_like(param) * 0.1)

    repo, tower = original_layout(reference.state_dict())
    repo_with_tower = dict(repo)
    repo_with_tower.update({"model.vision_tower.vision_encoder." + k: v for k, v in tower.items()})
    repo_with_tower["model.vision_tower.vision_encoder.clip_decoder.0.head.weight"] = torch.randn(8, 48)
    repo_with_tower["model.vision_tower.vision_encoder.clip_decoder.0.norm.weight"] = torch.randn(8)
    text = config.text_config
    original_config = {
        "architectures": ["MobileVideoGPTQwenForCausalLM"], "model_type": "MobileVideoGPT_qwen",
        "hidden_size": text.hidden_size, "intermediate_size": text.intermediate_size,
        "num_hidden_layers": text.num_hidden_layers, "num_attention_heads": text.num_attention_heads,
        "num_key_value_heads": text.num_key_value_heads, "max_position_embeddings": 32768, "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6, "hidden_act": "silu", "tie_word_embeddings": True, "vocab_size": 151936,
        "bos_token_id": None, "eos_token_id": text.eos_token_id, "torch_dtype": "float16", "rope_scaling": None,
        "mm_vision_tower": "OpenGVLab/VideoMamba/videomamba_m16_25M_f8_res224.pth",
        "image_mm_vision_tower": "openai/clip-vit-base-patch16", "mm_projector_type": "etp",
        "image_mm_projector_type": "etp", "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch",
        "mm_hidden_size": 768, "image_mm_hidden_size": 768, "mm_use_im_start_end": False,
        "mm_use_im_patch_token": False, "use_mm_proj": True,
    }
    folders = {}
    for name, tensors in (("with-tower", repo_with_tower), ("no-tower", repo)):
        folder = root / name
        folder.mkdir()
        save_file({k: v.contiguous() for k, v in tensors.items()}, folder / "model.safetensors")
        (folder / "config.json").write_text(json.dumps(original_config))
        (folder / "generation_config.json").write_text(
            json.dumps({"eos_token_id": [text.eos_token_id, 0], "repetition_penalty": 1.05, "do_sample": True, "top_k": 20})
        )
        tiny_tokenizer.save_pretrained(folder)
        folders[name] = folder
    pth = {"vision_encoder." + k: v for k, v in tower.items()}
    pth.update({"text_encoder.embeddings.weight": torch.randn(3, 4), "clip_teacher.proj": torch.randn(2),
                "vision_encoder.pool_norm.weight": torch.randn(48), "temp": torch.tensor(0.07),
                "vision_encoder.clip_decoder.0.head.weight": torch.randn(8, 48)})
    torch.save({"model": pth}, root / "videomamba.pth")
    return reference, folders, root


def logits_of(model, seed: int = 5) -> torch.Tensor:
    videos, context = random_video(seed)
    ids = torch.tensor([[5, 6] + [model.config.video_token_id] * model.config.visual_tokens_per_video + [7, 8]])
    with torch.no_grad():
        return model(input_ids=ids, pixel_values_videos=videos, pixel_values_context=context).logits.float()


@pytest.mark.parametrize("source", ["with-tower", "no-tower+pth", "with-tower+pth"])
def test_converted_model_equals_the_model_built_from_the_same_tensors(release, tmp_path, source):
    reference, folders, root = release
    repo = folders["no-tower" if source.startswith("no-tower") else "with-tower"]
    videomamba = root / "videomamba.pth" if source.endswith("+pth") else None
    report = convert(repo, root / "clip", tmp_path / "out", videomamba=videomamba, dtype="float32")
    converted = AutoModel.from_pretrained(tmp_path / "out", trust_remote_code=True).eval()
    assert torch.equal(logits_of(converted), logits_of(reference))
    reasons = " ".join(report.unused)
    assert "CLIP text tower" in reasons and "distillation head" in reasons
    if source == "with-tower+pth":
        assert "the repo's tower equals the .pth" in report.notes[0]
    if videomamba is not None:
        assert "VideoMamba's CLIP teacher" in reasons and "VideoMamba's text tower" in reasons
    assert json.loads((tmp_path / "out" / "generation_config.json").read_text())["repetition_penalty"] == 1.05


def test_folder_is_hub_ready_and_float16_keeps_encoders_in_float32(release, tmp_path):
    from safetensors import safe_open

    reference, folders, root = release
    assert mvgpt(["convert", "--original", str(folders["with-tower"]), "--clip", str(root / "clip"),
                  "--output", str(tmp_path / "out")]) == 0
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"config.json", "model.safetensors", "modeling_mobilevideogpt.py", "configuration_mobilevideogpt.py",
            "processing_mobilevideogpt.py", "video_processing_mobilevideogpt.py", "generation_config.json",
            "tokenizer_config.json", "README.md"} <= files
    card = (tmp_path / "out" / "README.md").read_text()
    assert card.startswith("---\nlicense:") and "pipeline_tag: video-text-to-text" in card and "trust_remote_code=True" in card
    with safe_open(tmp_path / "out" / "model.safetensors", "pt") as f:
        assert f.get_tensor("model.language_model.layers.0.mlp.up_proj.weight").dtype == torch.float16
        assert f.get_tensor("model.video_encoder.layers.0.mixer.A_log").dtype == torch.float32
        assert f.get_tensor("model.image_encoder.encoder.layers.0.mlp.fc1.weight").dtype == torch.float32
        assert "lm_head.weight" not in f.keys()
    converted = AutoModel.from_pretrained(tmp_path / "out", trust_remote_code=True, dtype=torch.float32).eval()
    assert torch.allclose(logits_of(converted), logits_of(reference), atol=5e-3)


def rewrite(folder: Path, target: Path, edit) -> Path:
    from safetensors.torch import load_file

    import shutil

    shutil.copytree(folder, target)
    tensors = load_file(target / "model.safetensors")
    edit(tensors)
    save_file(tensors, target / "model.safetensors")
    return target


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.pop("model.vision_tower.vision_encoder.layers.0.mixer.A_b_log"), "model.video_encoder.layers.0.mixer.A_b_log"),
        (lambda t: t.update({"model.mm_projector.mlp.mlp.0.weight": torch.zeros(3, 3)}), "video_projector.fc1.weight"),
        (lambda t: t.update({"model.some_new_head.weight": torch.zeros(2)}), "unknown tensor model.some_new_head.weight"),
    ],
    ids=["missing-backward-key", "wrong-shape", "unknown-key"],
)
def test_refuses_missing_wrong_and_unknown_tensors(release, tmp_path, edit, message):
    _, folders, root = release
    broken = rewrite(folders["with-tower"], tmp_path / "broken", edit)
    with pytest.raises(ConversionError, match=message.replace(".", r"\.")):
        convert(broken, root / "clip", tmp_path / "out")


class NotATensor:
    pass


def test_refuses_pickles_that_are_not_weights_only(release, tmp_path):
    _, folders, root = release
    torch.save({"model": {"vision_encoder.cls_token": torch.zeros(1)}, "args": NotATensor()}, tmp_path / "evil.pth")
    with pytest.raises(ConversionError, match="weights_only"):
        convert(folders["no-tower"], root / "clip", tmp_path / "out", videomamba=tmp_path / "evil.pth")


def test_refuses_a_release_without_any_videomamba_tower(release, tmp_path):
    _, folders, root = release
    with pytest.raises(ConversionError, match="--videomamba"):
        convert(folders["no-tower"], root / "clip", tmp_path / "out")


def test_reports_a_differing_pth_and_uses_it(release, tmp_path):
    reference, folders, root = release
    pth = torch.load(root / "videomamba.pth", weights_only=True)
    pth["model"]["vision_encoder.norm.weight"] = pth["model"]["vision_encoder.norm.weight"] * 2
    torch.save(pth, tmp_path / "changed.pth")
    report = convert(folders["with-tower"], root / "clip", tmp_path / "out", videomamba=tmp_path / "changed.pth")
    assert "differs from the .pth in 1 tensors (e.g. norm.weight)" in report.notes[0]
    converted = AutoModel.from_pretrained(tmp_path / "out", trust_remote_code=True)
    assert torch.equal(converted.model.video_encoder.norm.weight, pth["model"]["vision_encoder.norm.weight"])


def test_cli_reports_errors_without_a_traceback(release, tmp_path, capsys):
    _, folders, root = release
    code = mvgpt(["convert", "--original", str(folders["no-tower"]), "--clip", str(root / "clip"),
                  "--output", str(tmp_path / "out")])
    assert code == 1 and "--videomamba" in capsys.readouterr().err
