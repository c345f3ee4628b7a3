"""Training data: LLaVA-style JSON records -> model inputs with labels on the answers (spec §10).

A record is `{"video": path}` or `{"image": path}` (or neither: text only) plus `"conversations"`, a list of
`{"from": "human" | "gpt", "value": str}` (or `{"role": "user" | "assistant", "content": str}`). A `<video>` or
`<image>` tag in a human turn marks the media; it is moved to the front of that turn, as the original does. Paths are
relative to `media_root` (default: the JSON file's folder).

Labels follow the original's `preprocess_qwen`:
- system and user turns are ignored (-100); assistant turns are supervised, including their `<|im_start|>assistant\\n`
  header and the `<|im_end|>\\n` after them;
- quirk kept from the original: `<|im_start|>` and `<|im_end|>` are supervised in every turn (the original un-masks
  all of the tokenizer's additional special tokens after masking);
- the visual placeholders are never supervised.
The text is truncated to `max_length` tokens before the placeholders are expanded to the model's visual tokens, as
the original does. Video frames are sampled with `min_frames=8` (the original's training loader, spec Q-28).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from ..processing import MobileVideoGPTProcessor
from ..processing.processing_mobilevideogpt import DEFAULT_SYSTEM_PROMPT

IGNORE_INDEX = -100
TRAINING_MIN_FRAMES = 8
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
_MEDIA_TAG = re.compile(r"\s*<(video|image)>\s*")


class DataError(ValueError):
    """A training or evaluation record that cannot be used; the message names the file, the record and the fault."""


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """The JSON list in `path`, each record checked for the fields training and evaluation need."""
    path = Path(path)
    try:
        records = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"cannot read data file {path}: {error}") from error
    if not isinstance(records, list) or not records:
        raise DataError(f"data file {path} must hold a non-empty JSON list of records")
    for index, record in enumerate(records):
        turns = record.get("conversations") if isinstance(record, dict) else None
        if not isinstance(turns, list) or not turns:
            raise DataError(f"{path}, record {index}: needs a non-empty 'conversations' list")
        if "video" in record and "image" in record:
            raise DataError(f"{path}, record {index}: has both 'video' and 'image'; give one medium per record")
        for turn in turns:
            role = turn.get("from", turn.get("role")) if isinstance(turn, dict) else None
            text = turn.get("value", turn.get("content")) if isinstance(turn, dict) else None
            if role not in _ROLES or not isinstance(text, str):
                raise DataError(f"{path}, record {index}: bad turn {turn!r} (expected from/value or role/content)")
    return records


def to_messages(record: dict[str, Any]) -> list[dict[str, Any]]:
    """
    The record's conversation as transformers chat messages; the media goes first in the first user turn that has
    its tag (or in the first user turn when no turn has one).
    """
    medium = "video" if "video" in record else "image" if "image" in record else None
    messages = []
    placed = False
    for turn in record["conversations"]:
        role = _ROLES[turn.get("from", turn.get("role"))]
        text = turn.get("value", turn.get("content"))
        tagged = role == "user" and _MEDIA_TAG.search(text) is not None
        text = _MEDIA_TAG.sub("\n", text).strip() if role == "user" else text
        if role == "user" and medium and not placed and (tagged or not _has_tag(record)):
            messages.append({"role": role, "content": [{"type": medium}, {"type": "text", "text": text}]})
            placed = True
        else:
            messages.append({"role": role, "content": text})
    return messages


def _has_tag(record: dict[str, Any]) -> bool:
    return any(_MEDIA_TAG.search(turn.get("value", turn.get("content", ""))) for turn in record["conversations"])


def tokenize_conversation(
    processor: MobileVideoGPTProcessor, messages: list[dict[str, Any]], max_length: int
) -> tuple[list[int], list[int]]:
    """
    `(input_ids, labels)` of one conversation with the visual placeholders expanded.

    Each message is rendered by the chat template on its own and tokenized on its own (the template's blocks start
    and end at special tokens, so this equals tokenizing the whole text), which tells which tokens are answers.
    """
    tokenizer = processor.tokenizer
    if messages[0]["role"] != "system":
        messages = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}] + messages
    specials = {tokenizer.convert_tokens_to_ids(token) for token in ("<|im_start|>", "<|im_end|>")}
    input_ids: list[int] = []
    labels: list[int] = []
    for position, message in enumerate(messages):
        block = processor.apply_chat_template([message], add_generation_prompt=False)
        if position > 0:
            block = block.split("<|im_end|>\n", 1)[1]  # drop the system block the template adds to every rendering
        ids = tokenizer(block, add_special_tokens=False)["input_ids"]
        supervised = message["role"] == "assistant"
        input_ids += ids
        labels += [i if supervised or i in specials else IGNORE_INDEX for i in ids]
    input_ids, labels = input_ids[:max_length], labels[:max_length]

    expanded_ids, expanded_labels = [], []
    for token, label in zip(input_ids, labels):
        count = (
            processor.video_tokens if token == processor.video_token_id
            else processor.image_tokens if token == processor.image_token_id else 1
        )
        expanded_ids += [token] * count
        expanded_labels += [label if count == 1 else IGNORE_INDEX] * count
    return expanded_ids, expanded_labels


class SupervisedDataset(torch.utils.data.Dataset):
    """
    LLaVA-style records as model inputs. Item: `input_ids` and `labels` (seq,) long tensors, plus
    `pixel_values_videos` / `pixel_values_context` (16, 3, 224, 224) for a video record or `pixel_values`
    (3, 224, 224) for an image record.
    """

    def __init__(
        self,
        data_path: str | Path,
        processor: MobileVideoGPTProcessor,
        media_root: str | Path | None = None,
        max_length: int = 4096,
        min_frames: int = TRAINING_MIN_FRAMES,
    ):
        self.data_path = Path(data_path)
        self.records = load_records(self.data_path)
        self.processor = processor
        self.media_root = Path(media_root) if media_root is not None else self.data_path.parent
        self.max_length = max_length
        self.min_frames = min_frames

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        record = self.records[index]
        input_ids, labels = tokenize_conversation(self.processor, to_messages(record), self.max_length)
        item = {"input_ids": torch.tensor(input_ids), "labels": torch.tensor(labels)}
        if "video" in record:
            pixels = self.processor(
                videos=[str(self.media_root / record["video"])], min_frames=self.min_frames, return_tensors="pt"
            )
            item["pixel_values_videos"] = pixels["pixel_values_videos"][0]
            item["pixel_values_context"] = pixels["pixel_values_context"][0]
        elif "image" in record:
            item["pixel_values"] = self.processor(images=[str(self.media_root / record["image"])], return_tensors="pt")[
                "pixel_values"
            ][0]
        return item


class DataCollator:
    """Right-pads `input_ids` (pad id) and `labels` (-100), builds `attention_mask`, stacks the pixels present."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        length = max(len(item["input_ids"]) for item in items)
        input_ids = torch.full((len(items), length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(items), length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(items), length), dtype=torch.long)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            input_ids[row, :n], labels[row, :n], attention_mask[row, :n] = item["input_ids"], item["labels"], 1
        batch = {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}
        for key in ("pixel_values_videos", "pixel_values_context", "pixel_values"):
            pixels = [item[key] for item in items if key in item]
            if pixels:
                batch[key] = torch.stack(pixels)
        return batch
