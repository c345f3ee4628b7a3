"""Exact-match accuracy of any Mobile-VideoGPT folder on LLaVA-style QA records (`mvgpt eval`).

Every assistant turn of every record is a question to answer: the model sees the video, the conversation up to that
turn (earlier answers as written in the data) and generates greedily. The answer counts when it equals the
reference after lower-casing and stripping spaces and final punctuation. A record's `types` list (one per assistant
turn, as `mvgpt synth` writes) groups the results; records without it count as type "all".

Each video is decoded and encoded once; all its questions are answered in one batch from its visual tokens.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel, AutoProcessor

from .data import DataError, load_records, to_messages


def normalise(answer: str) -> str:
    return answer.strip().strip(".!?,;:").strip().lower()


def questions_of(record: dict[str, Any]) -> list[tuple[list[dict[str, Any]], str, str]]:
    """(messages up to the question, reference answer, type) for each assistant turn of the record."""
    messages = to_messages(record)
    types = record.get("types") or []
    found = []
    for position, message in enumerate(messages):
        if message["role"] == "assistant":
            kind = types[len(found)] if len(found) < len(types) else "all"
            found.append((messages[:position], message["content"], kind))
    return found


@torch.inference_mode()
def evaluate(
    model_path: str | Path,
    data_path: str | Path,
    limit: int | None = None,
    media_root: str | Path | None = None,
    max_new_tokens: int = 16,
    model=None,
    processor=None,
) -> dict[str, Any]:
    """
    Accuracy overall and per type on the first `limit` questions of `data_path` (all by default).

    Returns:
        `{"model", "data", "questions", "accuracy", "per_type": {type: {"questions", "accuracy"}}, "errors"}`, where
        `errors` lists up to 50 wrong answers as `{"id", "type", "question", "expected", "answer"}`.
    """
    data_path = Path(data_path)
    media_root = Path(media_root) if media_root is not None else data_path.parent
    processor = processor or AutoProcessor.from_pretrained(model_path, trust_remote_code=True)
    model = model or AutoModel.from_pretrained(model_path, trust_remote_code=True, dtype=torch.float32)
    model.eval()

    by_medium: dict[tuple[str, str], list] = defaultdict(list)
    total = 0
    for record in load_records(data_path):
        if "image" in record:
            raise DataError(f"{data_path}: record {record.get('id')} has an image; evaluation takes video records")
        for item in questions_of(record):
            if limit is not None and total >= limit:
                break
            by_medium[("video", record["video"]) if "video" in record else ("text", "")].append((record, *item))
            total += 1

    correct: dict[str, list[bool]] = defaultdict(list)
    errors = []
    for (kind, video), items in by_medium.items():
        prompts = [processor.apply_chat_template(messages, add_generation_prompt=True) for _, messages, _, _ in items]
        features = None
        if kind == "video":
            pixels = processor(videos=[str(media_root / video)], return_tensors="pt")
            features = model.get_video_features(pixels["pixel_values_videos"], pixels["pixel_values_context"])
        # the visual tokens come as `video_features`: expand the placeholders, pass no pixels
        texts = processor._expand_placeholders(prompts, len(prompts) if kind == "video" else 0, 0)
        inputs = processor.tokenizer(texts, padding=True, padding_side="left", return_tensors="pt",
                                     return_token_type_ids=False)
        visual = None if features is None else features.visual_tokens.expand(len(items), -1, -1)
        output = model.generate(
            **inputs, video_features=visual, max_new_tokens=max_new_tokens, do_sample=False,
            pad_token_id=processor.tokenizer.pad_token_id,
        )
        answers = processor.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        for (record, messages, expected, kind_of_question), answer in zip(items, answers):
            right = normalise(answer) == normalise(expected)
            correct[kind_of_question].append(right)
            if not right and len(errors) < 50:
                question = messages[-1]["content"]
                question = question if isinstance(question, str) else question[-1]["text"]
                errors.append({"id": record.get("id"), "type": kind_of_question, "question": question,
                               "expected": expected, "answer": answer})

    everything = [right for results in correct.values() for right in results]
    return {
        "model": str(model_path),
        "data": str(data_path),
        "questions": len(everything),
        "accuracy": sum(everything) / max(len(everything), 1),
        "per_type": {
            kind: {"questions": len(results), "accuracy": sum(results) / len(results)}
            for kind, results in sorted(correct.items())
        },
        "errors": errors,
    }


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{report['model']} on {report['data']}: {report['questions']} questions",
             f"{'type':<12}{'questions':>10}{'accuracy':>10}"]
    for kind, row in report["per_type"].items():
        lines.append(f"{kind:<12}{row['questions']:>10}{row['accuracy']:>10.1%}")
    lines.append(f"{'overall':<12}{report['questions']:>10}{report['accuracy']:>10.1%}")
    return "\n".join(lines)
