"""Publishing: validation before upload, the exact dry-run commit, the token kept out of output and files, LoRA
merging, adapter folders and the Space upload plan. No network: real uploads are attempted only offline."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModel

from mobilevideogpt.tiny import build_tiny_random_model
from mobilevideogpt.hub_upload.publish import PublishError, folder_files, merge_lora, push, push_space

from test_modeling import random_video

FAKE_TOKEN = "hf_FAKEtokenDoNotLeak0123456789abcdefXYZ"


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    return build_tiny_random_model(tmp_path_factory.mktemp("publish") / "model")


def test_dry_run_validates_and_prints_exactly_the_commit(model_folder):
    report = push(model_folder, "someone/mobile-videogpt-test", private=True, revision="v1", dry_run=True)
    lines = report.splitlines()
    assert lines[0] == (
        "Would upload to model repo someone/mobile-videogpt-test (private), revision v1, "
        "in one commit 'Upload Mobile-VideoGPT':"
    )
    listed = [line.split()[0] for line in lines[1:]]
    assert listed == [str(p) for p in folder_files(model_folder)]
    assert {"config.json", "model.safetensors", "modeling_mobilevideogpt.py", "processor_config.json"} <= set(listed)


def test_validation_rejects_a_broken_folder(model_folder, tmp_path):
    import shutil

    broken = shutil.copytree(model_folder, tmp_path / "broken")
    (broken / "modeling_mobilevideogpt.py").write_text("raise ImportError('this remote code is broken')\n")
    with pytest.raises(PublishError, match="does not load and generate in a fresh process"):
        push(broken, "someone/x", dry_run=True)
    with pytest.raises(PublishError, match="not a model folder"):
        push(tmp_path, "someone/x", dry_run=True)


def test_token_never_appears_in_output_or_files(model_folder, tmp_path):
    env = dict(os.environ, HF_TOKEN=FAKE_TOKEN, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    result = subprocess.run(
        [sys.executable, "-m", "mobilevideogpt.cli", "push", str(model_folder), "--repo-id", "someone/x"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 1  # offline: the upload fails cleanly, after validation
    assert "mvgpt push:" in result.stderr and "Traceback" not in result.stderr
    assert FAKE_TOKEN not in result.stdout + result.stderr
    for path in model_folder.rglob("*"):
        if path.is_file():
            assert FAKE_TOKEN.encode() not in path.read_bytes(), path


def test_merge_lora_equals_the_adapter_model(model_folder, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model

    torch.manual_seed(0)
    base = AutoModel.from_pretrained(model_folder, trust_remote_code=True)
    lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"]))
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)  # LoRA's B starts at zero: make the adapter matter
    lora.save_pretrained(tmp_path / "adapter")
    merged_folder = merge_lora(tmp_path / "adapter", tmp_path / "merged")

    videos, context = random_video(3)
    config = base.config
    ids = torch.tensor([[5, 6] + [config.video_token_id] * config.visual_tokens_per_video + [7]])
    adapter_model = PeftModel.from_pretrained(AutoModel.from_pretrained(model_folder, trust_remote_code=True), tmp_path / "adapter")
    merged = AutoModel.from_pretrained(merged_folder, trust_remote_code=True)
    plain = AutoModel.from_pretrained(model_folder, trust_remote_code=True)
    with torch.no_grad():
        expected = adapter_model.eval()(input_ids=ids, pixel_values_videos=videos, pixel_values_context=context).logits
        got = merged.eval()(input_ids=ids, pixel_values_videos=videos, pixel_values_context=context).logits
        before = plain.eval()(input_ids=ids, pixel_values_videos=videos, pixel_values_context=context).logits
    assert torch.allclose(got, expected, atol=1e-4)
    assert not torch.allclose(got, before, atol=1e-2)
    assert (merged_folder / "processor_config.json").exists()

    report = push(tmp_path / "adapter", "someone/lora", dry_run=True)  # an adapter is pushed as is
    card = (tmp_path / "adapter" / "README.md").read_text()
    assert f"base_model: {model_folder}" in card and "README.md" in report


def test_push_space_dry_run_lists_the_app_and_the_package(tmp_path):
    space = tmp_path / "space"
    space.mkdir()
    (space / "app.py").write_text("print('app')\n")
    (space / "requirements.txt").write_text("gradio\n")
    report = push_space("someone/demo", "someone/model", dry_run=True, space_dir=space)
    assert report.splitlines()[0].startswith("Would upload to space repo someone/demo")
    for expected in ("app.py", "requirements.txt", "mobilevideogpt/modeling/modeling_mobilevideogpt.py",
                     "mobilevideogpt/processing/processing_mobilevideogpt.py", "mobilevideogpt/demo.py", "mobilevideogpt/chat.py",
                     "variable MVGPT_MODEL=someone/model"):
        assert expected in report
