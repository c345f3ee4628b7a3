"""Processor + model together: from an mp4 path to an answer, in process, from a saved Hub-style folder in a fresh
offline process (both transformers versions), and through the `mvgpt demo` command."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mobilevideogpt.tiny import build_tiny_random_model, tiny_config
from mobilevideogpt.modeling import MobileVideoGPTForConditionalGeneration
from mobilevideogpt.tiny import write_video
from mobilevideogpt.training.synth import COLOURS, COUNT_WORDS, DIRECTIONS, SHAPES


@pytest.fixture(scope="module")
def tiny_model(tiny_tokenizer):
    torch.manual_seed(0)
    return MobileVideoGPTForConditionalGeneration(tiny_config(tiny_tokenizer)).eval()


def ask(video, question: str = "What is happening in this video?") -> list[dict]:
    return [{"role": "user", "content": [{"type": "video", "path": str(video)}, {"type": "text", "text": question}]}]


def test_generate_from_an_mp4_path(tiny_model, processor, clip_video):
    inputs = processor.apply_chat_template(
        ask(clip_video), add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert (inputs["input_ids"] == tiny_model.config.video_token_id).sum() == 2402
    out = tiny_model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert out.shape == (1, inputs["input_ids"].shape[1] + 6)
    answer = processor.batch_decode(out[:, inputs["input_ids"].shape[1] :])[0]
    assert isinstance(answer, str) and "<|im_end|>" not in answer
    with torch.no_grad():
        forward = tiny_model(**inputs)
    assert forward.video_features.frame_indices.shape == (1, 8)


def test_batch_of_two_videos_matches_single_runs(tiny_model, processor, video_dir):
    short = write_video(video_dir / "short.mp4", num_frames=20, width=96, height=64, fps=10)
    long = write_video(video_dir / "long.mkv", num_frames=150, width=64, height=96, fps=25)
    conversations = [ask(short, "Which colour?"), ask(long, "How many shapes are moving around in this clip?")]
    singles = []
    for conversation in conversations:
        inputs = processor.apply_chat_template(
            conversation, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
        )
        out = tiny_model.generate(**inputs, max_new_tokens=5, do_sample=False)
        singles.append(out[0, inputs["input_ids"].shape[1] :].tolist())
    batch = processor.apply_chat_template(
        conversations, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert batch["attention_mask"][0, 0] == 0  # the shorter prompt is left-padded
    out = tiny_model.generate(**batch, max_new_tokens=5, do_sample=False)
    assert out[:, batch["input_ids"].shape[1] :].tolist() == singles


LOAD_FOLDER_AND_ANSWER = r"""
import json, sys, torch, transformers
from transformers import AutoModel, AutoProcessor
folder, video = sys.argv[1:3]
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
assert type(processor).__module__.startswith("transformers_modules"), type(processor).__module__
messages = [{"role": "user", "content": [{"type": "video", "path": video}, {"type": "text", "text": "What happens?"}]}]
inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                       return_tensors="pt")
out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
print(json.dumps({"transformers": transformers.__version__, "tokens": out[0].tolist()}))
"""


@pytest.mark.parametrize("which", ["main", "compat"])
def test_saved_folder_answers_in_a_fresh_offline_process(tmp_path, clip_video, which, request):
    folder = build_tiny_random_model(tmp_path / "model")
    python = Path(sys.executable) if which == "main" else request.getfixturevalue("compat_python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "HF_", "TRANSFORMERS"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"))
    result = subprocess.run(
        [str(python), "-c", LOAD_FOLDER_AND_ANSWER, str(folder), str(clip_video)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = json.loads(result.stdout.strip().splitlines()[-1])

    from transformers import AutoModel, AutoProcessor

    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    inputs = processor.apply_chat_template(
        ask(clip_video, "What happens?"), add_generation_prompt=True, tokenize=True, return_dict=True,
        return_tensors="pt",
    )
    assert fresh["tokens"] == model.generate(**inputs, max_new_tokens=6, do_sample=False)[0].tolist()


def test_mvgpt_demo_runs_end_to_end_offline(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", MVGPT_CACHE=str(tmp_path / "cache"), TMPDIR=str(tmp_path))
    env.pop("MVGPT_MODEL", None)
    result = subprocess.run(
        [sys.executable, "-m", "mobilevideogpt.cli", "demo", "--max-new-tokens", "8"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "embedded demo model" in result.stdout
    assert "Key frames" in result.stdout and "tokens/s" in result.stdout
    answer = result.stdout.split("Answer: ")[1].splitlines()[0].strip()
    assert answer in {*COLOURS, *COUNT_WORDS, *DIRECTIONS, *SHAPES, "yes", "no"}, result.stdout
