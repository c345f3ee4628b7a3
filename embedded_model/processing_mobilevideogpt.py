# Copyright 2025 The Mobile-VideoGPT authors and contributors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""
Processor class for Mobile-VideoGPT: the Qwen2 tokenizer, the CLIP image processor and the video pipeline
(`video_processing_mobilevideogpt.py`) behind one `__call__` / `apply_chat_template`.

Output of [`MobileVideoGPTProcessor.__call__`] (and of `apply_chat_template(..., tokenize=True, return_dict=True)`):

| key | shape / type | content |
|---|---|---|
| `input_ids` | `(B, L)` int64 | prompt tokens, left padded; each video is `video_tokens` copies of `<\\|video_pad\\|>` (2402), each image `image_tokens_per_frame` copies of `<\\|image_pad\\|>` (144) |
| `attention_mask` | `(B, L)` int64 | 0 on padding |
| `pixel_values_videos` | `(N_videos, num_frames, 3, 224, 224)` float32 | VideoMamba stream: OpenCV bilinear squash resize, ImageNet mean/std (float64 math); zero frames after the real ones |
| `pixel_values_context` | `(N_videos, num_frames, 3, 224, 224)` float32 | CLIP stream of the same frames: shortest edge 224 bicubic, centre crop, CLIP mean/std; zero padded |
| `pixel_values` | `(N_images, 3, 224, 224)` float32 | CLIP preprocessing of images |
| `video_metadata` | `list[dict]`, one per video | `frame_indices`, `timestamps` (s), `num_real_frames`, `fps`, `total_frames`, `duration` (s), `backend`, `source` |

Video keys are present only when videos are given, `pixel_values` only with images. A video always takes the full
block of 2402 tokens: the original wrote one `<image>` per real frame and the model cut the run to 8 placeholders,
which gives the same sequence for videos with at least 8 frames (shorter ones hit the original's placeholder quirks,
spec Q-15). This file and
`video_processing_mobilevideogpt.py` are served as remote code: at module level they import only torch,
transformers, numpy and the standard library.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .video_processing_mobilevideogpt import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    VIDEO_BACKENDS,
    VideoDecodeError,
    describe_source,
    image_to_rgb_array,
    load_frames,
    videomamba_pixel_values,
)


DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
STOP_STRING = "<|im_end|>"

# The original `qwen2_instruct` conversation (CHATML): the default system prompt is always present, every message is
# `<|im_start|>{role}\n{content}<|im_end|>\n`, a video (image) renders as one `<|video_pad|>` (`<|image_pad|>`)
# followed by "\n" (the processor expands it to the model's number of visual tokens), text renders as is.
CHAT_TEMPLATE = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- if messages[0]['content'] is string -%}{%- set system_prompt = messages[0]['content'] -%}"
    "{%- else -%}{%- set system_prompt = messages[0]['content'] | selectattr('type', 'equalto', 'text')"
    " | map(attribute='text') | join('') -%}{%- endif -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set system_prompt = '" + DEFAULT_SYSTEM_PROMPT + "' -%}{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{{- '<|im_start|>system\\n' + system_prompt + '<|im_end|>\\n' -}}"
    "{%- for message in loop_messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'video' -%}{{- '<|video_pad|>\\n' -}}"
    "{%- elif item['type'] == 'image' -%}{{- '<|image_pad|>\\n' -}}"
    "{%- elif item['type'] == 'text' -%}{{- item['text'] -}}"
    "{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def default_image_processor():
    """
    The CLIP ViT-B/16 image processor the original used (`openai/clip-vit-base-patch16`'s settings), in its PIL
    implementation, which needs no torchvision: `CLIPImageProcessorPil` in transformers 5.x, `CLIPImageProcessor` in
    4.x. Both give the same values, bit for bit, and save as `CLIPImageProcessor`.
    """
    import transformers

    image_processor_class = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    return image_processor_class(
        do_resize=True,
        size={"shortest_edge": 224},
        resample=3,  # PIL bicubic
        do_center_crop=True,
        crop_size={"height": 224, "width": 224},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
        do_convert_rgb=True,
    )


class MobileVideoGPTProcessor(ProcessorMixin):
    r"""
    Constructs a Mobile-VideoGPT processor: a Qwen2 tokenizer, a CLIP image processor for images and context frames,
    and the video pipeline (decoding, frame sampling, VideoMamba preprocessing).

    The sizes that decide how many tokens a video takes mirror the model config and must match it:
    `num_frames * image_tokens_per_frame + (num_frames // chunk_size) * video_tokens_per_chunk` (2402 by default).

    Args:
        image_processor ([`CLIPImageProcessor`]): CLIP preprocessing for images and context frames.
        tokenizer ([`Qwen2TokenizerFast`]): the language model's tokenizer, with `<|video_pad|>` and `<|image_pad|>`.
        chat_template (`str`, *optional*): Jinja template; defaults to the original `qwen2_instruct` format.
        num_frames (`int`, *optional*, defaults to 16): frames sampled per video (model input length).
        chunk_size (`int`, *optional*, defaults to 8): frames per scoring chunk.
        frames_per_chunk (`int`, *optional*, defaults to 4): key frames the model keeps per chunk (top-K); does not
            change the processing, kept so the processor describes the model it was saved with.
        image_tokens_per_frame (`int`, *optional*, defaults to 144): visual tokens per context frame or image.
        video_tokens_per_chunk (`int`, *optional*, defaults to 49): visual tokens per chunk of key frames.
        fps (`float`, *optional*, defaults to 1.0): frame sampling rate before subsampling to `num_frames`.
        video_size (`int`, *optional*, defaults to 224): side of the VideoMamba frames.
        video_mean (`list[float]`, *optional*), video_std (`list[float]`, *optional*): VideoMamba normalisation
            (ImageNet defaults).
        video_backend (`str`, *optional*): decoder to use (`"decord"`, `"pyav"`, `"torchcodec"`, `"opencv"`);
            by default the first installed one that decodes the video.
        input_fps (`float`, *optional*, defaults to 3.0): frame rate assumed for videos given as frames.
        round_pixels_to_fp16 (`bool`, *optional*, defaults to `False`): round every pixel output through float16, as
            the original inference script did before feeding the towers (for parity tests).
    """

    attributes = ["image_processor", "tokenizer"]
    if not hasattr(ProcessorMixin, "get_attributes"):  # transformers 4.x loads the parts through these names
        image_processor_class = "AutoImageProcessor"
        tokenizer_class = "AutoTokenizer"

    def __init__(
        self,
        image_processor,
        tokenizer,
        chat_template: str | None = None,
        num_frames: int = 16,
        chunk_size: int = 8,
        frames_per_chunk: int = 4,
        image_tokens_per_frame: int = 144,
        video_tokens_per_chunk: int = 49,
        fps: float = 1.0,
        video_size: int = 224,
        video_mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
        video_std: Sequence[float] = IMAGENET_DEFAULT_STD,
        video_backend: str | None = None,
        input_fps: float = 3.0,
        round_pixels_to_fp16: bool = False,
    ):
        if num_frames % chunk_size != 0 or not 0 < frames_per_chunk <= chunk_size:
            raise ValueError(
                f"num_frames ({num_frames}) must be a multiple of chunk_size ({chunk_size}) and frames_per_chunk "
                f"({frames_per_chunk}) in 1..chunk_size"
            )
        if video_backend is not None and video_backend not in VIDEO_BACKENDS:
            raise ValueError(f"video_backend must be one of {VIDEO_BACKENDS}, got {video_backend!r}")
        self.num_frames = num_frames
        self.chunk_size = chunk_size
        self.frames_per_chunk = frames_per_chunk
        self.image_tokens_per_frame = image_tokens_per_frame
        self.video_tokens_per_chunk = video_tokens_per_chunk
        self.fps = fps
        self.video_size = video_size
        self.video_mean = list(video_mean)
        self.video_std = list(video_std)
        self.video_backend = video_backend
        self.input_fps = input_fps
        self.round_pixels_to_fp16 = round_pixels_to_fp16
        super().__init__(image_processor, tokenizer, chat_template=chat_template or CHAT_TEMPLATE)

        self.video_token = "<|video_pad|>"
        self.image_token = "<|image_pad|>"
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in (self.video_token_id, self.image_token_id):
            raise ValueError("the tokenizer must have the <|video_pad|> and <|image_pad|> special tokens")

    @property
    def video_tokens(self) -> int:
        """Number of `<|video_pad|>` tokens a video expands to: context-frame tokens then key-frame chunk tokens."""
        return (
            self.num_frames * self.image_tokens_per_frame
            + (self.num_frames // self.chunk_size) * self.video_tokens_per_chunk
        )

    @property
    def image_tokens(self) -> int:
        """Number of `<|image_pad|>` tokens an image expands to."""
        return self.image_tokens_per_frame

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "pixel_values_videos", "pixel_values_context", "pixel_values"]

    def __call__(
        self,
        text: str | list[str] | None = None,
        images: Any = None,
        videos: Any = None,
        *,
        num_frames: int | None = None,
        fps: float | None = None,
        start_time: float | None = None,
        end_time: float | None = None,
        video_backend: str | None = None,
        min_frames: int | None = None,
        return_tensors: str | None = None,
        padding: bool | str = True,
        padding_side: str = "left",
        **tokenizer_kwargs,
    ) -> BatchFeature:
        """
        Prepares text, images and videos for the model.

        Args:
            text (`str` or `list[str]`, *optional*):
                Prompt(s). Each `<|video_pad|>` stands for the next video and each `<|image_pad|>` for the next image
                (in order across the batch); each is expanded to the model's number of visual tokens.
            images (*optional*):
                One image or a list (possibly nested per sample) of images: PIL images, `(H, W, C)` uint8 arrays or
                tensors, or image file paths.
            videos (*optional*):
                One video or a list of videos: file paths, bytes, binary file objects, `(T, H, W, C)` uint8 arrays or
                tensors, or lists of PIL images / arrays.
            num_frames (`int`, *optional*): sample at most this many frames (at most the processor's `num_frames`;
                the pixel tensors keep the processor's length, zero padded).
            fps (`float`, *optional*): sampling rate in frames per second (default: the processor's `fps`).
            start_time (`float`, *optional*), end_time (`float`, *optional*): span to sample from, in seconds.
            video_backend (`str`, *optional*): decoder for this call.
            min_frames (`int`, *optional*): videos with fewer one-per-`1 / fps` positions are resampled to this many
                frames (default `num_frames`; training uses 8, as the original's data loader, spec Q-28).
            return_tensors (`str`, *optional*): `"pt"` for torch tensors, `"np"` for numpy arrays.
            padding, padding_side, **tokenizer_kwargs: passed to the tokenizer (left padding by default).

        Returns:
            [`BatchFeature`] with the keys described in the module docstring.
        """
        data: dict[str, Any] = {}
        video_metadata = None
        if videos is not None:
            videos = _as_video_list(videos)
            max_frames = self.num_frames if num_frames is None else num_frames
            if not 1 <= max_frames <= self.num_frames:
                raise ValueError(f"num_frames must be in 1..{self.num_frames}, got {num_frames}")
            streams, context, video_metadata = [], [], []
            for video in videos:
                frames, metadata = load_frames(
                    video,
                    num_frames=max_frames,
                    fps=self.fps if fps is None else fps,
                    start_time=start_time,
                    end_time=end_time,
                    backend=video_backend or self.video_backend,
                    input_fps=self.input_fps,
                    min_frames=min_frames,
                )
                streams.append(
                    self._pad(videomamba_pixel_values(frames, self.video_size, self.video_mean, self.video_std))
                )
                context.append(self._pad(self._clip_pixel_values(list(frames))))
                video_metadata.append(metadata)
            data["pixel_values_videos"] = np.stack(streams)
            data["pixel_values_context"] = np.stack(context)
        if images is not None:
            images = [_load_image(image) for image in _flatten_images(images)]
            data["pixel_values"] = self._clip_pixel_values(images)
        for key in ("pixel_values_videos", "pixel_values_context", "pixel_values"):
            if key in data:
                data[key] = self._cast_pixels(data[key])

        if text is not None:
            texts = [text] if isinstance(text, str) else list(text)
            texts = self._expand_placeholders(
                texts, len(videos) if videos is not None else 0, len(data.get("pixel_values", ()))
            )
            tokenizer_kwargs.setdefault("return_token_type_ids", False)
            encoding = self.tokenizer(texts, padding=padding, padding_side=padding_side, **tokenizer_kwargs)
            data.update(encoding)

        batch = BatchFeature(data=data, tensor_type=return_tensors)
        if video_metadata is not None:
            batch["video_metadata"] = video_metadata
        return batch

    def _clip_pixel_values(self, images: list[np.ndarray]) -> np.ndarray:
        """CLIP preprocessing of `(H, W, 3)` uint8 RGB arrays -> `(N, 3, 224, 224)` float32."""
        return np.asarray(
            self.image_processor(images, return_tensors="np", input_data_format="channels_last")["pixel_values"],
            dtype=np.float32,
        )

    def _pad(self, pixel_values: np.ndarray) -> np.ndarray:
        """Zero frames after the real ones up to `num_frames` (zeros in normalised space, as the original)."""
        missing = self.num_frames - pixel_values.shape[0]
        if missing <= 0:
            return pixel_values
        padding = np.zeros((missing, *pixel_values.shape[1:]), dtype=pixel_values.dtype)
        return np.concatenate([pixel_values, padding])

    def _cast_pixels(self, pixel_values: np.ndarray) -> np.ndarray:
        """
        float32 output. With `round_pixels_to_fp16` the values are rounded to float16 and back, as the original's
        `tensor.half()` did (torch converts float64 to float16 through float32, and so does this).
        """
        pixel_values = pixel_values.astype(np.float32)
        if self.round_pixels_to_fp16:
            pixel_values = pixel_values.astype(np.float16).astype(np.float32)
        return pixel_values

    def _expand_placeholders(self, texts: list[str], num_videos: int, num_images: int) -> list[str]:
        """Replaces every placeholder with its run of visual tokens, after checking there is one per input."""
        found_videos = sum(text.count(self.video_token) for text in texts)
        found_images = sum(text.count(self.image_token) for text in texts)
        if found_videos != num_videos or found_images != num_images:
            raise ValueError(
                f"The text has {found_videos} {self.video_token} and {found_images} {self.image_token} placeholders "
                f"for {num_videos} videos and {num_images} images; there must be one placeholder per input "
                "(apply_chat_template writes them)."
            )
        return [
            text.replace(self.video_token, self.video_token * self.video_tokens).replace(
                self.image_token, self.image_token * self.image_tokens
            )
            for text in texts
        ]

    def apply_chat_template(
        self,
        conversation: list[dict[str, Any]] | list[list[dict[str, Any]]],
        chat_template: str | None = None,
        add_generation_prompt: bool = False,
        tokenize: bool = False,
        return_dict: bool = False,
        return_tensors: str | None = None,
        num_frames: int | None = None,
        fps: float | None = None,
        start_time: float | None = None,
        end_time: float | None = None,
        video_backend: str | None = None,
        **kwargs,
    ):
        """
        Renders conversations in the original prompt format and, with `tokenize=True`, processes their media.

        Messages use the transformers format: `{"role": ..., "content": str | list}` with content items
        `{"type": "text", "text": ...}`, `{"type": "video", "video" | "path": ...}` and
        `{"type": "image", "image" | "path": ...}`. Without a system message the original's
        "You are a helpful assistant." is used. Videos and images may appear in any user turn; each is rendered as
        its placeholder followed by "\\n" (the original puts the video before the question in the first turn).

        Args:
            conversation: one conversation (a list of messages) or a batch of them.
            add_generation_prompt (`bool`): append `<|im_start|>assistant\\n`.
            tokenize (`bool`): return token ids (or, with `return_dict=True`, everything `__call__` returns) instead
                of the rendered text.
            num_frames, fps, start_time, end_time, video_backend: video sampling options, see `__call__`.
            **kwargs: extra template variables.

        Returns:
            The rendered prompt (`str` or `list[str]`), the `input_ids`, or a [`BatchFeature`].
        """
        prompt = super().apply_chat_template(
            conversation,
            chat_template=chat_template,
            add_generation_prompt=add_generation_prompt,
            tokenize=False,
            **kwargs,
        )
        if not tokenize:
            return prompt
        conversations = conversation if conversation and isinstance(conversation[0], (list, tuple)) else [conversation]
        videos = [item for messages in conversations for item in _media_items(messages, "video")]
        images = [item for messages in conversations for item in _media_items(messages, "image")]
        inputs = self(
            text=prompt,
            images=images or None,
            videos=videos or None,
            num_frames=num_frames,
            fps=fps,
            start_time=start_time,
            end_time=end_time,
            video_backend=video_backend,
            return_tensors=return_tensors,
        )
        return inputs if return_dict else inputs["input_ids"]

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> list[str]:
        """
        Saves the processor like [`ProcessorMixin.save_pretrained`], in a layout both transformers 4.57 and 5.x load:
        transformers 5.x writes the image processor only inside `processor_config.json` and lists the extra special
        tokens as `extra_special_tokens`, which 4.57 cannot read; the image processor is also written to
        `preprocessor_config.json` and the list is stored as `additional_special_tokens`.
        """
        files = super().save_pretrained(save_directory, *args, **kwargs)
        preprocessor_file = os.path.join(save_directory, "preprocessor_config.json")
        if not os.path.exists(preprocessor_file):
            image_processor_dict = self.image_processor.to_dict()
            image_processor_dict["processor_class"] = type(self).__name__
            _write_json(preprocessor_file, image_processor_dict)
        tokenizer_file = os.path.join(save_directory, "tokenizer_config.json")
        tokenizer_config = _read_json(tokenizer_file)
        if isinstance(tokenizer_config.get("extra_special_tokens"), list):
            tokenizer_config["additional_special_tokens"] = tokenizer_config.pop("extra_special_tokens")
            _write_json(tokenizer_file, tokenizer_config)
        return files

    def batch_decode(self, sequences, skip_special_tokens: bool = True, **kwargs) -> list[str]:
        """Decodes generated token ids into answers: special tokens skipped, whitespace and a final `<|im_end|>` stripped."""
        texts = self.tokenizer.batch_decode(sequences, skip_special_tokens=skip_special_tokens, **kwargs)
        return [_clean_answer(text) for text in texts]

    def decode(self, token_ids, skip_special_tokens: bool = True, **kwargs) -> str:
        """Decodes one generated sequence into an answer, like [`batch_decode`]."""
        return _clean_answer(self.tokenizer.decode(token_ids, skip_special_tokens=skip_special_tokens, **kwargs))


def _read_json(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _write_json(path: str, content: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.write(json.dumps(content, indent=2, sort_keys=True) + "\n")



MobileVideoGPTProcessor.register_for_auto_class()

def _clean_answer(text: str) -> str:
    """The original's post-processing: strip, drop a trailing stop string, strip again."""
    return text.strip().removesuffix(STOP_STRING).strip()


def _is_single_video(video: Any) -> bool:
    """A file, a frame array or tensor, or a PIL image (a 1-frame video)."""
    if isinstance(video, (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, torch.Tensor)):
        return True
    return hasattr(video, "read") or _is_frame(video)


def _is_frame(obj: Any) -> bool:
    """A PIL image or an `(H, W, C)` array / tensor: one frame of a video given as a list of frames."""
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        return obj.ndim == 3
    return type(obj).__module__.startswith("PIL.")


def _as_video_list(videos: Any) -> list[Any]:
    """
    One video -> `[video]`. A list is a list of videos, except a list of frames (PIL images or `(H, W, C)` arrays),
    which is one video, as in transformers.
    """
    if _is_single_video(videos):
        return [videos]
    videos = list(videos)
    if videos and all(_is_frame(video) for video in videos):
        return [videos]
    return videos


def _flatten_images(images: Any) -> list[Any]:
    if isinstance(images, (list, tuple)):
        return [image for item in images for image in _flatten_images(item)]
    return [images]


def _load_image(image: Any) -> np.ndarray:
    """An image input (PIL image, array, tensor or file path) as an `(H, W, 3)` uint8 RGB array."""
    if isinstance(image, (str, os.PathLike)):
        try:  # Pillow is optional for remote code: imported inside a try block
            from PIL import Image
        except ImportError as error:
            raise ValueError(f"reading the image file {image!r} needs Pillow (pip install pillow)") from error
        try:
            with Image.open(image) as opened:
                return image_to_rgb_array(opened)
        except (OSError, ValueError) as error:
            raise ValueError(f"Cannot read image {describe_source(image)!r}: {error}") from error
    return image_to_rgb_array(image)


def _media_items(messages: list[dict[str, Any]], kind: str) -> list[Any]:
    """The `kind` ("video" or "image") sources of a conversation, in order."""
    found = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str) or content is None:
            continue
        for item in content:
            if item.get("type") != kind:
                continue
            source = item.get(kind, item.get("path"))
            if source is None:
                raise ValueError(f"A {kind} item needs a '{kind}' or 'path' entry (URLs are not fetched): {item}")
            found.append(source)
    return found


__all__ = ["CHAT_TEMPLATE", "MobileVideoGPTProcessor", "VideoDecodeError", "default_image_processor"]
