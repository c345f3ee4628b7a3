"""The committed embedded demo model (`embedded_model/`, built by `training/demo_model.py`): it loads like a Hub
model, answers freshly generated held-out questions, and its frame scorer picks different key frames for different
videos."""

import filecmp
from pathlib import Path

import pytest
import torch
from mobilevideogpt.demo import DEMO_MODEL_DIR, resolve_model
from mobilevideogpt.training.evaluate import evaluate
from mobilevideogpt.training.synth import QUESTION_TYPES, write_dataset
from transformers import AutoModel, AutoProcessor

PACKAGE = Path(__file__).resolve().parents[1]
# Neither the training clips (seed 0) nor the build's own held-out clips (seed 10,000).
HELD_OUT_SEED, HELD_OUT_CLIPS = 777_777, 300


@pytest.fixture(scope="module")
def demo():
    model = AutoModel.from_pretrained(DEMO_MODEL_DIR, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(DEMO_MODEL_DIR, trust_remote_code=True)
    return model, processor


@pytest.fixture(scope="module")
def held_out(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("held-out"), HELD_OUT_CLIPS, seed=HELD_OUT_SEED)


def test_is_the_offline_default(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MVGPT_MODEL", raising=False)
    assert resolve_model()[0] == str(DEMO_MODEL_DIR)


def test_files_are_small_and_the_remote_code_is_the_package_code():
    files = [path for path in DEMO_MODEL_DIR.rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in files) < 30 * 2**20
    remote = [path for path in files if path.suffix == ".py"]
    assert len(remote) >= 3
    for path in remote:  # save_pretrained copies the package's files; a stale copy would run old code
        source = next((PACKAGE / part / path.name for part in ("modeling", "processing")
                       if (PACKAGE / part / path.name).exists()), None)
        assert source is not None and filecmp.cmp(path, source, shallow=False), f"{path.name} differs from {source}"


def test_answers_held_out_questions(demo, held_out):
    """At least 90 % exact match overall and on every question type, greedy, on clips generated here."""
    model, processor = demo
    report = evaluate(DEMO_MODEL_DIR, held_out, model=model, processor=processor)
    per_type = {kind: row["accuracy"] for kind, row in report["per_type"].items()}
    assert set(per_type) == set(QUESTION_TYPES)
    assert report["accuracy"] >= 0.9 and min(per_type.values()) >= 0.9, (per_type, report["errors"][:10])


def test_frame_scorer_choices_differ_across_videos(demo, held_out):
    model, processor = demo
    clips = sorted((held_out.parent / "clips").glob("*.mp4"))[:40]
    choices = set()
    with torch.no_grad():
        for clip in clips:
            pixels = processor(videos=str(clip), return_tensors="pt")
            features = model.get_video_features(pixels["pixel_values_videos"], pixels["pixel_values_context"])
            choices.add(tuple(features.frame_indices[0].tolist()))
    assert len(choices) >= 3, choices
