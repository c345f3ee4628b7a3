"""MobileVideoGPTProcessor: prompt format, placeholder expansion, the two pixel pipelines, batching, decoding of
answers, and saving / loading across transformers 4.57 and 5.x."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mobilevideogpt.processing.processing_mobilevideogpt import CHAT_TEMPLATE, MobileVideoGPTProcessor, default_image_processor
from mobilevideogpt.processing.video_processing_mobilevideogpt import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    VideoDecodeError,
    read_video,
    resize_bilinear_uint8,
    videomamba_pixel_values,
)
from mobilevideogpt.tiny import frame_index_from_pixels, make_frame, write_video


REPO_ROOT = Path(__file__).resolve().parents[1]
SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
VIDEO_TOKENS = 16 * 144 + 2 * 49


def video_message(source, question="What is happening in this video?"):
    return [{"role": "user", "content": [{"type": "video", "path": source}, {"type": "text", "text": question}]}]


def run_transformers_4(python: Path, code: str) -> str:
    result = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, timeout=300, cwd=str(REPO_ROOT)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# ---------------------------------------------------------------------------------------------------------------
# Prompt format (spec §6.1, §7.3)
# ---------------------------------------------------------------------------------------------------------------


def test_token_counts_and_special_tokens(processor, tiny_tokenizer):
    assert processor.video_tokens == VIDEO_TOKENS == 2402
    assert processor.image_tokens == 144
    assert processor.video_token == "<|video_pad|>" and processor.image_token == "<|image_pad|>"
    assert processor.video_token_id == tiny_tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert processor.image_token_id == tiny_tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert processor.video_token_id != processor.image_token_id


def test_single_turn_prompt_is_the_original(processor):
    prompt = processor.apply_chat_template(video_message("v.mp4"), add_generation_prompt=True)
    assert prompt == (
        SYSTEM + "<|im_start|>user\n<|video_pad|>\nWhat is happening in this video?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_system_message_replaces_the_default(processor):
    messages = [{"role": "system", "content": "Answer briefly."}, *video_message("v.mp4", "Why?")]
    prompt = processor.apply_chat_template(messages)
    assert prompt == "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\n<|video_pad|>\nWhy?<|im_end|>\n"
    structured = [
        {"role": "system", "content": [{"type": "text", "text": "Answer briefly."}]},
        *video_message("v.mp4", "Why?"),
    ]
    assert processor.apply_chat_template(structured) == prompt


def test_multi_turn_history(processor):
    messages = [
        *video_message("v.mp4", "What is the man doing?"),
        {"role": "assistant", "content": [{"type": "text", "text": "He is running."}]},
        {"role": "user", "content": "Why?"},
    ]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert prompt == (
        SYSTEM + "<|im_start|>user\n<|video_pad|>\nWhat is the man doing?<|im_end|>\n"
        "<|im_start|>assistant\nHe is running.<|im_end|>\n<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_text_only_and_image_prompts(processor):
    text_only = processor.apply_chat_template([{"role": "user", "content": "Hello"}], add_generation_prompt=True)
    assert text_only == SYSTEM + "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
    image = [{"role": "user", "content": [{"type": "image", "image": None}, {"type": "text", "text": "Describe it."}]}]
    assert processor.apply_chat_template(image) == SYSTEM + "<|im_start|>user\n<|image_pad|>\nDescribe it.<|im_end|>\n"


def test_tokenizer_carries_the_same_template(processor, tiny_tokenizer):
    messages = [{"role": "user", "content": "Hello"}]
    assert tiny_tokenizer.chat_template == CHAT_TEMPLATE
    assert tiny_tokenizer.apply_chat_template(messages, tokenize=False) == processor.apply_chat_template(messages)


def test_tokenized_video_prompt_structure(processor, tiny_tokenizer, clip_video):
    """prefix ids + one contiguous block of 2402 video tokens + ids of "\\n{question}<|im_end|>\\n<|im_start|>assistant\\n"
    (spec §6.2, with the tiny tokenizer standing in for Qwen2's)."""
    question = "What is happening in this video?"
    inputs = processor.apply_chat_template(
        video_message(clip_video, question),
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
    )
    assert set(inputs) == {
        "input_ids",
        "attention_mask",
        "pixel_values_videos",
        "pixel_values_context",
        "video_metadata",
    }
    ids = inputs["input_ids"][0].tolist()
    prefix = tiny_tokenizer(SYSTEM + "<|im_start|>user\n", add_special_tokens=False)["input_ids"]
    suffix = tiny_tokenizer(f"\n{question}<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    assert ids == prefix + [processor.video_token_id] * VIDEO_TOKENS + suffix
    assert inputs["attention_mask"].tolist() == [[1] * len(ids)]
    assert suffix[0] == tiny_tokenizer.convert_tokens_to_ids("Ċ")  # the text after the block starts with "\n"

    plain = processor.apply_chat_template(
        video_message(clip_video, question), add_generation_prompt=True, tokenize=True
    )
    assert plain == inputs["input_ids"].tolist()


def test_image_inputs(processor):
    image = make_frame(5, 96, 64)
    messages = [
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "Describe it."}]}
    ]
    inputs = processor.apply_chat_template(messages, tokenize=True, return_dict=True, return_tensors="pt")
    assert set(inputs) == {"input_ids", "attention_mask", "pixel_values"}
    assert inputs["pixel_values"].shape == (1, 3, 224, 224) and inputs["pixel_values"].dtype == torch.float32
    assert (inputs["input_ids"] == processor.image_token_id).sum() == 144
    reference = processor.image_processor(image, return_tensors="np", input_data_format="channels_last")[
        "pixel_values"
    ]
    np.testing.assert_array_equal(inputs["pixel_values"].numpy(), reference)


def test_image_from_path_pil_and_modes(processor, tmp_path):
    from PIL import Image

    rgb = make_frame(9, 80, 60)
    Image.fromarray(rgb).save(tmp_path / "frame.png")
    rgba = Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)]), mode="RGBA")
    grey = Image.fromarray(rgb[..., 0])
    grey_as_rgb = np.repeat(rgb[..., :1], 3, axis=-1)
    images = [str(tmp_path / "frame.png"), rgba, grey, rgb, grey_as_rgb]
    out = processor(images=images, return_tensors="np")["pixel_values"]
    np.testing.assert_array_equal(out[0], out[3])  # a file and the array it holds
    np.testing.assert_array_equal(out[1], out[3])  # alpha is dropped
    np.testing.assert_array_equal(out[2], out[4])  # grey is replicated to RGB
    with pytest.raises(ValueError, match="Cannot read image"):
        processor(images=[str(tmp_path / "missing.png")])


def test_placeholder_count_is_checked(processor, clip_video):
    with pytest.raises(ValueError, match="one placeholder per input"):
        processor(text="no placeholder here", videos=clip_video)
    with pytest.raises(ValueError, match="one placeholder per input"):
        processor(text="<|video_pad|><|video_pad|>", videos=clip_video)


def test_no_token_type_ids_and_text_only_call(processor):
    inputs = processor(text=["Hello", "What is happening in this video?"], return_tensors="pt")
    assert set(inputs) == {"input_ids", "attention_mask"}
    assert inputs["attention_mask"][0, 0] == 0  # left padding


# ---------------------------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------------------------


def test_batch_left_padding(processor, clip_video, video_dir):
    short = write_video(video_dir / "short.mp4", num_frames=5, fps=5)
    conversations = [
        video_message(clip_video, "What is happening in this video?"),
        video_message(short, "Colour?"),
    ]
    inputs = processor.apply_chat_template(
        conversations, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert inputs["pixel_values_videos"].shape == (2, 16, 3, 224, 224)
    assert inputs["pixel_values_context"].shape == (2, 16, 3, 224, 224)
    assert [m["num_real_frames"] for m in inputs["video_metadata"]] == [16, 5]
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    pad = processor.tokenizer.pad_token_id
    lengths = mask.sum(1).tolist()
    assert lengths[0] > lengths[1] and mask[0].all()
    assert mask[1, : ids.shape[1] - lengths[1]].eq(0).all() and mask[1, ids.shape[1] - lengths[1] :].eq(1).all()
    assert ids[1, : ids.shape[1] - lengths[1]].eq(pad).all()
    assert ((ids == processor.video_token_id).sum(1) == VIDEO_TOKENS).all()
    single = processor.apply_chat_template(conversations[1], add_generation_prompt=True, tokenize=True)[0]
    assert ids[1, ids.shape[1] - lengths[1] :].tolist() == single
    single_pixels = processor(text="<|video_pad|>", videos=short, return_tensors="pt")
    torch.testing.assert_close(
        inputs["pixel_values_videos"][1], single_pixels["pixel_values_videos"][0], rtol=0, atol=0
    )


def test_batch_decode_gives_clean_answers(processor, tiny_tokenizer):
    answer = tiny_tokenizer(" The man is running.<|im_end|>", add_special_tokens=False)["input_ids"]
    padded = answer + [tiny_tokenizer.pad_token_id] * 2
    assert processor.batch_decode([answer, padded]) == ["The man is running.", "The man is running."]
    assert processor.decode(torch.tensor(answer)) == "The man is running."
    assert processor.decode(answer, skip_special_tokens=False) == "The man is running."


# ---------------------------------------------------------------------------------------------------------------
# Pixel pipelines (spec §2.1, §3.9, Q-13, Q-14, Q-27, Q-29)
# ---------------------------------------------------------------------------------------------------------------


def original_videomamba(frames):
    """The original `videomamba/utils.py` preprocessing, restated: per frame cv2 squash resize, float64 maths."""
    cv2 = pytest.importorskip("cv2")
    mean, std = np.array(IMAGENET_DEFAULT_MEAN), np.array(IMAGENET_DEFAULT_STD)
    out = []
    for frame in frames:
        frame = cv2.resize(frame, (224, 224))
        frame = frame / 255.0
        frame = (frame - mean) / std
        out.append(torch.from_numpy(frame.transpose(2, 0, 1)))
    return torch.stack(out)


def test_both_streams_use_the_same_sampled_frames(processor, clip_video):
    inputs = processor(text="<|video_pad|>", videos=clip_video, return_tensors="pt")
    frames, metadata = read_video(clip_video)
    assert metadata["frame_indices"] == inputs["video_metadata"][0]["frame_indices"]
    assert [frame_index_from_pixels(frame) for frame in frames] == metadata["frame_indices"]

    expected_video = original_videomamba(frames).to(torch.float32)
    torch.testing.assert_close(inputs["pixel_values_videos"][0], expected_video, rtol=0, atol=0)
    expected_context = np.stack(
        [
            processor.image_processor(frame, return_tensors="np", input_data_format="channels_last")["pixel_values"][0]
            for frame in frames
        ]
    )
    np.testing.assert_array_equal(inputs["pixel_values_context"][0].numpy(), expected_context)


def test_short_video_is_zero_padded_after_normalisation(processor, video_dir):
    short = write_video(video_dir / "five.mp4", num_frames=5, width=64, height=48, fps=5)
    inputs = processor(text="<|video_pad|>", videos=short, return_tensors="pt")
    metadata = inputs["video_metadata"][0]
    assert metadata["frame_indices"] == [0, 1, 2, 3, 4] and metadata["num_real_frames"] == 5
    for key in ("pixel_values_videos", "pixel_values_context"):
        pixels = inputs[key][0]
        assert pixels.shape == (16, 3, 224, 224) and pixels.dtype == torch.float32
        assert pixels[5:].eq(0).all() and not pixels[:5].eq(0).all(dim=(1, 2, 3)).any()
    assert (inputs["input_ids"] == processor.video_token_id).sum() == VIDEO_TOKENS


def test_round_pixels_to_fp16_matches_the_original_cast(tiny_tokenizer, clip_video):
    rounding = MobileVideoGPTProcessor(default_image_processor(), tiny_tokenizer, round_pixels_to_fp16=True)
    inputs = rounding(text="<|video_pad|>", videos=clip_video, return_tensors="pt")
    frames, _ = read_video(clip_video)
    expected = (
        original_videomamba(frames).half().float()
    )  # inference.py: stacked float64 tensor .half(), tower .float()
    torch.testing.assert_close(inputs["pixel_values_videos"][0], expected, rtol=0, atol=0)
    clip = np.stack([rounding._clip_pixel_values([frame])[0] for frame in frames])
    torch.testing.assert_close(
        inputs["pixel_values_context"][0], torch.from_numpy(clip).half().float(), rtol=0, atol=0
    )
    assert not np.array_equal(clip, inputs["pixel_values_context"][0].numpy())  # the rounding did something


@pytest.mark.parametrize(
    "size", [(48, 64), (240, 320), (1080, 1920), (16, 4000), (4000, 16), (448, 448), (179, 223), (1, 1)]
)
def test_numpy_resize_equals_opencv(size):
    cv2 = pytest.importorskip("cv2")
    image = np.random.default_rng(sum(size)).integers(0, 256, (*size, 3), dtype=np.uint8)
    for out in [(224, 224), (300, 150), (7, 13)]:
        np.testing.assert_array_equal(resize_bilinear_uint8(image, *out), cv2.resize(image, (out[1], out[0])))


def test_videomamba_pipeline_without_opencv(monkeypatch, clip_video):
    """Without cv2 the numpy resize gives the same pixels, bit for bit."""
    frames, _ = read_video(clip_video)
    with_cv2 = videomamba_pixel_values(frames)
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` raise ImportError
    without_cv2 = videomamba_pixel_values(frames)
    assert without_cv2.dtype == np.float64 and without_cv2.shape == (16, 3, 224, 224)
    np.testing.assert_array_equal(with_cv2, without_cv2)


def test_context_frames_equal_transformers_4_clip_processor(processor, tmp_path, compat_python):
    """The CLIP stream equals transformers 4.57's slow CLIPImageProcessor called per frame, as the original did."""
    rng = np.random.default_rng(0)
    frames = [
        rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for h, w in [(48, 64), (720, 1280), (16, 400), (400, 16), (3, 5)]
    ]
    ours = np.stack([processor._clip_pixel_values([frame])[0] for frame in frames])
    np.savez(tmp_path / "frames.npz", *frames)
    run_transformers_4(
        compat_python,
        "import numpy as np\n"
        "from transformers import CLIPImageProcessor\n"
        f"data = np.load({str(tmp_path / 'frames.npz')!r})\n"
        "processor = CLIPImageProcessor()\n"
        "out = [processor.preprocess(data[k], return_tensors='pt', input_data_format='channels_last')['pixel_values'][0].numpy() for k in data.files]\n"
        f"np.save({str(tmp_path / 'reference.npy')!r}, np.stack(out))\n"
    )
    np.testing.assert_array_equal(ours, np.load(tmp_path / "reference.npy"))


# ---------------------------------------------------------------------------------------------------------------
# Inputs and options
# ---------------------------------------------------------------------------------------------------------------


def test_every_input_kind_gives_the_same_pixels(processor, clip_video):
    reference = processor(videos=clip_video, return_tensors="np")["pixel_values_videos"]
    data = Path(clip_video).read_bytes()
    assert np.array_equal(processor(videos=data, return_tensors="np")["pixel_values_videos"], reference)
    assert np.array_equal(processor(videos=io.BytesIO(data), return_tensors="np")["pixel_values_videos"], reference)
    with open(clip_video, "rb") as file:
        assert np.array_equal(processor(videos=file, return_tensors="np")["pixel_values_videos"], reference)

    frames, _ = read_video(clip_video)  # 16 decoded frames, given as frames: all kept (<= 16 frames)
    from PIL import Image

    as_array = processor(videos=frames, return_tensors="np")
    assert as_array["video_metadata"][0]["frame_indices"] == list(range(16))
    assert as_array["video_metadata"][0]["backend"] == "frames"
    np.testing.assert_array_equal(as_array["pixel_values_videos"], reference)
    np.testing.assert_array_equal(
        processor(videos=torch.from_numpy(frames), return_tensors="np")["pixel_values_videos"], reference
    )
    pil = [Image.fromarray(frame) for frame in frames]
    np.testing.assert_array_equal(processor(videos=pil, return_tensors="np")["pixel_values_videos"], reference)
    np.testing.assert_array_equal(
        processor(videos=[pil, frames], return_tensors="np")["pixel_values_videos"][1], reference[0]
    )

    single = processor(videos=frames[3], return_tensors="np")  # one image as a video: 1 real frame
    assert single["video_metadata"][0]["num_real_frames"] == 1
    np.testing.assert_array_equal(single["pixel_values_videos"][0, 0], reference[0, 3])


def test_frame_input_is_sampled_like_a_video(processor):
    frames = np.stack([make_frame(i, 32, 32) for i in range(120)])  # 40 s at the assumed 3 fps
    metadata = processor(videos=frames)["video_metadata"][0]
    assert metadata["frame_indices"] == [0, 6, 15, 21, 30, 39, 45, 54, 60, 69, 78, 84, 93, 99, 108, 117]
    assert metadata["total_frames"] == 120 and metadata["fps"] == 3.0


def test_sampling_options(processor, clip_video):
    def indices(**kwargs):
        return processor(videos=clip_video, **kwargs)["video_metadata"][0]["frame_indices"]

    assert indices() == [0, 6, 12, 18, 24, 30, 36, 42, 48, 54, 60, 66, 72, 78, 84, 90]
    assert indices(start_time=2, end_time=4) == list(range(16, 32))
    assert indices(start_time=4, end_time=2) == list(range(16, 32))  # swapped, as the original
    assert indices(num_frames=8) == [0, 8, 24, 32, 48, 56, 72, 88]
    assert indices(fps=4) == [0, 6, 12, 18, 24, 30, 36, 42, 50, 56, 62, 68, 74, 80, 86, 94]
    eight = processor(videos=clip_video, num_frames=8, return_tensors="pt")
    assert (
        eight["pixel_values_videos"].shape == (1, 16, 3, 224, 224) and eight["pixel_values_videos"][0, 8:].eq(0).all()
    )
    with pytest.raises(ValueError, match="num_frames"):
        processor(videos=clip_video, num_frames=32)
    with pytest.raises(VideoDecodeError, match="past the end"):
        processor(videos=clip_video, start_time=100, end_time=120)


def test_metadata(processor, clip_video):
    metadata = processor(videos=clip_video)["video_metadata"][0]
    assert metadata["fps"] == 8.0 and metadata["total_frames"] == 96 and metadata["duration"] == 12.0
    assert metadata["timestamps"] == pytest.approx([i / 8 for i in metadata["frame_indices"]])
    assert metadata["source"] == str(clip_video) and metadata["backend"] in ("decord", "pyav", "torchcodec", "opencv")


# ---------------------------------------------------------------------------------------------------------------
# Saving and loading (AutoProcessor, trust_remote_code, both transformers versions)
# ---------------------------------------------------------------------------------------------------------------


def save_with_auto_map(processor, folder):
    processor.save_pretrained(folder)
    return folder


def test_save_and_load_with_auto_processor(processor, tmp_path, clip_video):
    from transformers import AutoProcessor

    folder = save_with_auto_map(processor, tmp_path / "saved")
    config = json.loads((folder / "processor_config.json").read_text())
    assert config["auto_map"] == {"AutoProcessor": "processing_mobilevideogpt.MobileVideoGPTProcessor"}
    assert config["num_frames"] == 16 and config["video_tokens_per_chunk"] == 49
    assert (folder / "video_processing_mobilevideogpt.py").exists() and (folder / "chat_template.jinja").exists()

    loaded = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert type(loaded).__name__ == "MobileVideoGPTProcessor"
    assert loaded.chat_template == CHAT_TEMPLATE and loaded.video_tokens == VIDEO_TOKENS
    messages = video_message(clip_video)
    expected = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    actual = loaded.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    for key in ("input_ids", "attention_mask", "pixel_values_videos", "pixel_values_context"):
        assert torch.equal(expected[key], actual[key]), key


LOAD_AND_RUN = """
import sys, json
from transformers import AutoProcessor
processor = AutoProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
messages = [{"role": "user", "content": [{"type": "video", "path": sys.argv[2]}, {"type": "text", "text": "What is happening in this video?"}]}]
inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt")
print(json.dumps({"ids": inputs["input_ids"][0].tolist(), "video_sum": float(inputs["pixel_values_videos"].double().sum()),
                  "context_sum": float(inputs["pixel_values_context"].double().sum()), "keys": sorted(inputs)}))
"""


def load_and_run(python, folder, video):
    result = subprocess.run(
        [str(python), "-c", LOAD_AND_RUN, str(folder), str(video)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_folders_load_across_transformers_versions(processor, tmp_path, clip_video, compat_python):
    """A folder saved by 5.x loads in 4.57 and the reverse, and both versions produce the same inputs."""
    folder_5 = save_with_auto_map(processor, tmp_path / "saved_by_5")
    folder_4 = tmp_path / "saved_by_4"
    run_transformers_4(
        compat_python,
        "from transformers import AutoProcessor\n"
        f"processor = AutoProcessor.from_pretrained({str(folder_5)!r}, trust_remote_code=True)\n"
        f"processor.save_pretrained({str(folder_4)!r})\n"
    )
    results = [
        load_and_run(python, folder, clip_video)
        for python in (sys.executable, compat_python)
        for folder in (folder_5, folder_4)
    ]
    assert all(result == results[0] for result in results)
    assert results[0]["keys"] == [
        "attention_mask",
        "input_ids",
        "pixel_values_context",
        "pixel_values_videos",
        "video_metadata",
    ]


def test_tiny_tokenizer_saved_by_5_loads_in_4(tiny_tokenizer, tmp_path, compat_python):
    tiny_tokenizer.save_pretrained(tmp_path / "tokenizer")
    text = "<|im_start|>user\n<|video_pad|>\nWhat is happening in this video?<|im_end|>\n"
    out = run_transformers_4(
        compat_python,
        "import json\n"
        "from transformers import AutoTokenizer\n"
        f"tokenizer = AutoTokenizer.from_pretrained({str(tmp_path / 'tokenizer')!r})\n"
        f"print(json.dumps([tokenizer({text!r})['input_ids'], tokenizer.pad_token, tokenizer.eos_token, tokenizer.padding_side]))\n"
    )
    ids, pad, eos, side = json.loads(out.strip().splitlines()[-1])
    assert ids == tiny_tokenizer(text)["input_ids"]
    assert (pad, eos, side) == ("<|endoftext|>", "<|im_end|>", "left")
