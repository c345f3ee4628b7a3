"""Training: synthetic data, label masking, the three stages, 2-process DDP, evaluation and the committed demo model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mobilevideogpt.tiny import build_tiny_random_model
from mobilevideogpt.training.data import IGNORE_INDEX, DataCollator, DataError, SupervisedDataset, load_records, to_messages
from mobilevideogpt.training.synth import CELL, COLOURS, QUESTION_TYPES, SIZE, make_scene, render, write_dataset
from mobilevideogpt.training.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
QUICK = dict(batch_size=2, gradient_accumulation_steps=1, dataloader_num_workers=0, gradient_checkpointing=False,
             lora_r=8, lora_alpha=16)


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("synth"), n=4, seed=3, turns=6)


@pytest.fixture(scope="module")
def base_model(tmp_path_factory) -> Path:
    return build_tiny_random_model(tmp_path_factory.mktemp("base") / "model")


# ---------------------------------------------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------------------------------------------


def test_synth_is_deterministic_and_covers_every_type(tmp_path):
    first = json.loads(write_dataset(tmp_path / "a", n=12, seed=7).read_text())
    second = json.loads(write_dataset(tmp_path / "b", n=12, seed=7).read_text())
    assert first == second
    assert (tmp_path / "a" / "clips" / "000000.mp4").read_bytes() == (tmp_path / "b" / "clips" / "000000.mp4").read_bytes()
    assert {kind for record in first for kind in record["types"]} == set(QUESTION_TYPES)
    assert all(len(record["conversations"]) == 2 and record["conversations"][0]["value"].startswith("<video>\n")
               for record in first)


def test_synth_answers_match_the_pixels():
    import random

    rng = random.Random(11)
    for _ in range(10):
        scene = make_scene(rng)
        frames = render(scene)
        last = frames[-1].reshape(-1, 3)
        for shape in scene.shapes:  # every shape is on screen at the end, in its colour
            assert (np.abs(last.astype(int) - COLOURS[shape.colour]).sum(1) == 0).any()
        colours_at_start = {name for name, rgb in COLOURS.items()
                            if (np.abs(frames[0].reshape(-1, 3).astype(int) - rgb).sum(1) == 0).any()}
        assert colours_at_start == {shape.colour for shape in scene.shapes if shape.appears == 0}
        start, end = scene.mover_cell(0), scene.mover_cell(15)
        moved = {"left": start[0] - end[0], "right": end[0] - start[0], "up": start[1] - end[1], "down": end[1] - start[1]}
        assert moved[scene.direction] == scene.steps >= 1
        colour = COLOURS[scene.shapes[scene.mover].colour]  # the mover's pixels are where its last cell is
        rows, cols = np.nonzero((last == colour).all(-1).reshape(SIZE, SIZE))
        assert (cols.mean() // CELL, rows.mean() // CELL) == end
        if scene.target is not None:  # touching: the two shapes' cells share a side at the end; otherwise apart
            target = scene.shapes[scene.target]
            gap = abs(end[0] - target.col) + abs(end[1] - target.row)
            assert (gap == 1) == scene.touches


def test_synth_events_are_seen_by_any_choice_of_one_key_frame_per_window():
    """The sampler's 8 frames (seconds 0, 2, 4, 6, 8, 10, 12, 15), one kept per window of two: whichever are kept,
    each shape is first seen in the window it appears in, the mover is seen in place before its move and at its
    last cell in the last window, and the final contact is on screen."""
    import itertools
    import random

    from mobilevideogpt.processing.video_processing_mobilevideogpt import sample_frame_indices
    from mobilevideogpt.training.synth import FPS, SECONDS

    seconds = [index / FPS for index in sample_frame_indices(SECONDS * FPS, FPS, num_frames=8, min_frames=8)]
    assert seconds == [0, 2, 4, 6, 8, 10, 12, 15]
    windows = [seconds[i : i + 2] for i in range(0, 8, 2)]
    rng = random.Random(5)
    for _ in range(200):
        scene = make_scene(rng)
        first_window = [shape.appears // 4 for shape in scene.shapes]
        mover = scene.shapes[scene.mover]
        for kept in itertools.product(*windows):
            seen = [min(w for w, t in enumerate(kept) if t >= shape.appears) for shape in scene.shapes]
            assert seen == first_window
            cells = [scene.mover_cell(t) for t in kept if t >= mover.appears]
            assert cells[0] == (mover.col, mover.row) and cells[-1] == scene.mover_cell(SECONDS)
        assert scene.arrival <= 12


# ---------------------------------------------------------------------------------------------------------------
# Data and labels
# ---------------------------------------------------------------------------------------------------------------


def test_labels_supervise_answers_only(processor, synth_data):
    dataset = SupervisedDataset(synth_data, processor)
    item = dataset[0]
    ids, labels = item["input_ids"], item["labels"]
    assert item["pixel_values_videos"].shape == item["pixel_values_context"].shape == (16, 3, 224, 224)
    assert (ids == processor.video_token_id).sum() == processor.video_tokens
    assert (labels[ids == processor.video_token_id] == IGNORE_INDEX).all()
    # the same ids as the processor gives for the whole conversation
    whole = processor.apply_chat_template(to_messages(dataset.records[0]))
    video = str(synth_data.parent / dataset.records[0]["video"])
    assert processor(text=whole, videos=[video])["input_ids"][0] == ids.tolist()
    # supervised text: every assistant turn with its header, plus <|im_start|>/<|im_end|> everywhere (original quirk)
    tokenizer = processor.tokenizer
    supervised = tokenizer.decode(ids[labels != IGNORE_INDEX])
    answers = [turn["value"] for turn in dataset.records[0]["conversations"] if turn["from"] == "gpt"]
    expected = "<|im_start|><|im_end|><|im_start|><|im_end|>" + "".join(
        f"<|im_start|>assistant\n{answer}<|im_end|>\n" + ("<|im_start|><|im_end|>" if i < len(answers) - 1 else "")
        for i, answer in enumerate(answers)
    )
    assert supervised == expected


def test_media_tag_moves_to_the_front_and_bad_records_are_refused(tmp_path):
    record = {"video": "a.mp4", "conversations": [{"from": "human", "value": "What happens?\n<video>"},
                                                  {"from": "gpt", "value": "x"}]}
    assert to_messages(record)[0]["content"] == [{"type": "video"}, {"type": "text", "text": "What happens?"}]
    for bad, message in [
        ({"video": "a.mp4"}, "conversations"),
        ({"video": "a", "image": "b", "conversations": record["conversations"]}, "both"),
        ({"conversations": [{"from": "robot", "value": "hi"}]}, "bad turn"),
    ]:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps([bad]))
        with pytest.raises(DataError, match=message):
            load_records(path)
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(DataError, match="broken.json"):
        load_records(tmp_path / "broken.json")


def test_collator_right_pads(processor, synth_data):
    dataset = SupervisedDataset(synth_data, processor)
    batch = DataCollator(processor.tokenizer.pad_token_id)([dataset[0], dataset[1]])
    shorter = int(batch["attention_mask"].sum(1).argmin())
    length = int(batch["attention_mask"][shorter].sum())
    assert (batch["input_ids"][shorter, length:] == processor.tokenizer.pad_token_id).all()
    assert (batch["labels"][shorter, length:] == IGNORE_INDEX).all()
    assert batch["pixel_values_videos"].shape[0] == 2


# ---------------------------------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------------------------------


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


@pytest.mark.slow
@pytest.mark.parametrize("stage, trained", [(1, "model.video_projector."), (2, "model.image_projector.")])
def test_projector_stages_train_only_their_projector(tmp_path, base_model, synth_data, stage, trained):
    out = train(stage, base_model, synth_data, tmp_path / "out", TrainConfig(max_steps=2, **QUICK))
    before, after = _weights(base_model), _weights(out)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(name.startswith(trained) for name in changed)
    assert (out / "loss.png").stat().st_size > 1000 and (out / "README.md").exists()


@pytest.mark.slow
def test_stage3_lora_adapter_and_merged_folder(tmp_path, base_model, synth_data):
    from peft import PeftModel
    from transformers import AutoModel, AutoProcessor

    settings = {**QUICK, "gradient_checkpointing": True}  # the recipe's default, on the LoRA-wrapped LM
    out = train(3, base_model, synth_data, tmp_path / "out", TrainConfig(max_steps=2, learning_rate=1e-2, **settings))
    adapter_config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["r"] == 8 and set(adapter_config["modules_to_save"]) == {"image_projector", "video_projector"}
    before, after = _weights(base_model), _weights(out)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert any(".language_model." in name and "q_proj" in name for name in changed)
    assert any(name.startswith("model.video_projector.") for name in changed)
    assert not any(name.startswith(("model.image_encoder.", "model.video_encoder.")) for name in changed)

    merged = AutoModel.from_pretrained(out, trust_remote_code=True).eval()
    peft = PeftModel.from_pretrained(AutoModel.from_pretrained(base_model, trust_remote_code=True), out / "adapter").eval()
    processor = AutoProcessor.from_pretrained(out, trust_remote_code=True)
    batch = DataCollator(processor.tokenizer.pad_token_id)([SupervisedDataset(synth_data, processor)[0]])
    batch.pop("labels")
    with torch.no_grad():
        torch.testing.assert_close(merged(**batch).logits, peft(**batch).logits, rtol=1e-4, atol=1e-4)


def test_config_file_and_unknown_settings(tmp_path):
    (tmp_path / "settings.yaml").write_text("epochs: 5\nlearning_rate: 0.01\n")
    config = TrainConfig.from_file(tmp_path / "settings.yaml", learning_rate=0.5, batch_size=None)
    assert (config.epochs, config.learning_rate, config.lora_r) == (5, 0.5, 128)
    (tmp_path / "bad.json").write_text('{"epochz": 1}')
    with pytest.raises(ValueError, match="epochz"):
        TrainConfig.from_file(tmp_path / "bad.json")


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path, base_model, synth_data):
    """`accelerate launch` with the repository's DDP config, 2 CPU processes (gloo): loss falls, the folder loads."""
    one_record = json.loads(synth_data.read_text())[:1] * 4  # the same record: loss must fall within a few steps
    data = synth_data.with_name("ddp.json")
    data.write_text(json.dumps(one_record))
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / "training/accelerate/ddp.yaml"),
        "--cpu", "--num_processes", "2", "-m", "mobilevideogpt.cli", "train", "--stage", "3", "--data", str(data),
        "--model", str(base_model), "--output", str(tmp_path / "out"), "--max-steps", "6", "--batch-size", "1",
        "--learning-rate", "0.003", "--lora-r", "8", "--lora-alpha", "16", "--num-workers", "0",
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    log = json.loads((tmp_path / "out" / "training_log.json").read_text())
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert log[-1]["epoch"] == 3.0  # 4 records, 1 per process and step: 2 processes make 2 steps an epoch
    from transformers import AutoModel

    AutoModel.from_pretrained(tmp_path / "out", trust_remote_code=True)


def test_train_refuses_bad_input(tmp_path, base_model, synth_data):
    with pytest.raises(ValueError, match="stage"):
        train(4, base_model, synth_data, tmp_path / "out")
    (tmp_path / "images.json").write_text(json.dumps([{"image": "a.png", "conversations": [
        {"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "x"}]}]))
    with pytest.raises(DataError, match="video records only"):
        train(1, base_model, tmp_path / "images.json", tmp_path / "out")


# ---------------------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------------------


def test_mvgpt_synth_and_eval_commands(tmp_path, base_model):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    synth = subprocess.run([sys.executable, "-m", "mobilevideogpt.cli", "synth", "--out", str(tmp_path / "data"),
                            "--n", "2", "--seed", "5"], capture_output=True, text=True, env=env, timeout=300)
    assert synth.returncode == 0, synth.stderr[-2000:]
    records = json.loads((tmp_path / "data" / "data.json").read_text())
    assert len({record["video"] for record in records}) == 2
    result = subprocess.run(
        [sys.executable, "-m", "mobilevideogpt.cli", "eval", "--model", str(base_model), "--data",
         str(tmp_path / "data" / "data.json"), "--limit", "5", "--output", str(tmp_path / "report.json")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["questions"] == 5 and "overall" in result.stdout
    assert sum(row["questions"] for row in report["per_type"].values()) == 5
    assert 0.0 <= report["accuracy"] <= 1.0
    missing = subprocess.run([sys.executable, "-m", "mobilevideogpt.cli", "eval", "--model", str(base_model), "--data",
                              str(tmp_path / "nope.json")], capture_output=True, text=True, env=env, timeout=300)
    assert missing.returncode == 1 and "nope.json" in missing.stderr


def test_demo_model_base_is_pretrained_and_matches_its_processor(tmp_path, monkeypatch):
    """`build_base` at a few steps: the image ET-Proj starts silent (its tokens are zeros, as during the LM's
    pre-training), VideoMamba's weights moved, the saved processor samples and expands exactly what the config
    encodes (36 visual tokens), and the model answers through the whole pipeline."""
    from transformers import AutoModel, AutoProcessor

    from mobilevideogpt.training import demo_model

    monkeypatch.setitem(demo_model.VIDEO_PRETRAINING, "steps", 41)  # OneCycleLR's shortest at 5 % warm-up
    monkeypatch.setitem(demo_model.VIDEO_PRETRAINING, "batch_size", 4)
    monkeypatch.setitem(demo_model.LM_PRETRAINING, "steps", 2)
    monkeypatch.setitem(demo_model.LM_PRETRAINING, "scenes_per_step", 2)
    data = write_dataset(tmp_path / "data", n=3, seed=1)
    folder = demo_model.build_base(tmp_path / "base", data, seed=0)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    torch.manual_seed(0)  # build_base's random initialisation, before pre-training
    fresh = type(model)(model.config)
    assert not torch.equal(fresh.model.video_encoder.layers[0].mixer.in_proj.weight,
                           model.model.video_encoder.layers[0].mixer.in_proj.weight)

    record = json.loads(data.read_text())[0]
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "How many shapes?"}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=prompt, videos=str(data.parent / record["video"]), return_tensors="pt")
    assert model.config.num_frames == processor.num_frames == inputs["pixel_values_context"].shape[1] == 8
    assert (inputs["input_ids"] == model.config.video_token_id).sum() == model.config.visual_tokens_per_video == 36
    with torch.no_grad():
        features = model.get_video_features(inputs["pixel_values_videos"], inputs["pixel_values_context"])
        image_tokens = model.config.num_frames * model.config.image_tokens_per_frame
        assert features.visual_tokens[:, :image_tokens].abs().max() == 0
        output = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert output.shape[1] == inputs["input_ids"].shape[1] + 3


def test_scene_facts_hold_every_answer():
    """The 12 facts VideoMamba is pre-trained on determine the answer to every question about a scene."""
    import random

    from mobilevideogpt.training.demo_model import FACT_CLASSES, scene_facts
    from mobilevideogpt.training.synth import COLOURS, COUNT_WORDS, DIRECTIONS, SHAPES, make_scene, questions

    colours, kinds = list(COLOURS), list(SHAPES)
    rng = random.Random(3)
    for _ in range(200):
        scene = make_scene(rng)
        facts = scene_facts(scene)
        assert all(0 <= value < n for value, n in zip(facts, FACT_CLASSES, strict=True))
        for kind, question, answer in questions(scene, rng):
            if kind == "colour":
                assert colours[facts[kinds.index(question.split()[-1][:-1])] - 1] == answer
            elif kind == "shape":
                assert kinds[facts[3 + colours.index(question.split()[-2])] - 1] == answer
            elif kind == "direction":
                assert list(DIRECTIONS)[facts[7]] == answer
            elif kind == "count":
                assert COUNT_WORDS[facts[8] + 1] == answer
            elif kind == "order":
                assert colours[facts[9] if "first" in question else facts[10]] == answer
            else:
                assert ("yes" if facts[11] else "no") == answer


def test_evaluate_scores_exact_matches(tmp_path, base_model, synth_data):
    """A model whose answers are known: the reference answers themselves score 100 %, others 0 %."""
    from mobilevideogpt.training.evaluate import normalise, questions_of

    record = json.loads(synth_data.read_text())[0]
    found = questions_of(record)
    assert [kind for _, _, kind in found] == record["types"]
    assert all(messages[-1]["role"] == "user" for messages, _, _ in found)
    assert normalise(" Red. ") == "red" and normalise("Yes!") == "yes"
