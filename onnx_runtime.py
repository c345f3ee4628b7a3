"""Run an ONNX export of Mobile-VideoGPT (`mvgpt export-onnx`) with onnxruntime: video in, answer out.

Needs onnxruntime, numpy and the processor saved beside the graphs (loaded with `AutoProcessor`, i.e.
transformers and the processor's own code); no PyTorch model code runs. The graphs are those of
`hub_upload/export_onnx.py`: `vision_encoder.onnx` (pixels -> 2402 visual tokens per video), `embed_tokens.onnx`
and `decoder_model_merged.onnx` (Qwen2 + LM head with a KV cache; an empty past on the first step).

Example:
    >>> runner = MobileVideoGPTOnnxRunner.from_pretrained("exported-folder")
    >>> runner.answer("clip.mp4", "What is happening in this video?", max_new_tokens=64)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

VISION_ENCODER, EMBED_TOKENS, DECODER = "vision_encoder", "embed_tokens", "decoder_model_merged"
_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}


class MobileVideoGPTOnnxRunner:
    """The generate loop of `MobileVideoGPTForConditionalGeneration` on onnxruntime sessions.

    Args:
        folder: an exported folder (graphs, `config.json`, `generation_config.json`, processor files).
        processor: the processor to use; by default `AutoProcessor.from_pretrained(folder, trust_remote_code=True)`.
        suffix: graph file suffix, `""` for `{graph}.onnx` or `"_quantized"` for the `--quantize int8` graphs.
        num_threads: onnxruntime intra-op threads (default: onnxruntime's choice).
        providers: onnxruntime execution providers (default: CPU).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        processor: Any = None,
        suffix: str = "",
        num_threads: int | None = None,
        providers: list[str] | None = None,
    ):
        self.folder = Path(folder)
        options = ort.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
        providers = providers or ["CPUExecutionProvider"]
        self.sessions = {
            name: ort.InferenceSession(str(self.folder / f"{name}{suffix}.onnx"), options, providers=providers)
            for name in (VISION_ENCODER, EMBED_TOKENS, DECODER)
        }
        self.input_types = {
            name: {i.name: _NUMPY_TYPES[i.type] for i in session.get_inputs()} for name, session in self.sessions.items()
        }
        config = _read_json(self.folder / "config.json")
        text = config["text_config"]
        self.video_token_id: int = config["video_token_id"]
        self.num_layers: int = text["num_hidden_layers"]
        self.num_key_value_heads: int = text["num_key_value_heads"]
        self.head_dim: int = text.get("head_dim") or text["hidden_size"] // text["num_attention_heads"]
        generation = _read_json(self.folder / "generation_config.json")
        eos = generation.get("eos_token_id", text.get("eos_token_id"))
        self.eos_token_ids: list[int] = [eos] if isinstance(eos, int) else list(eos or [])
        self.pad_token_id: int = generation.get("pad_token_id") or (self.eos_token_ids or [0])[0]
        self.generation_defaults = {
            key: generation[key] for key in ("do_sample", "temperature", "top_k", "top_p") if key in generation
        }
        if processor is None:
            from transformers import AutoProcessor

            processor = AutoProcessor.from_pretrained(self.folder, trust_remote_code=True)
        self.processor = processor

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **kwargs) -> MobileVideoGPTOnnxRunner:
        """Same as the constructor (transformers-style entry point)."""
        return cls(folder, **kwargs)

    def _run(self, name: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        types = self.input_types[name]
        return self.sessions[name].run(None, {key: value.astype(types[key], copy=False) for key, value in feeds.items()})

    def get_video_features(
        self, pixel_values_videos: np.ndarray, pixel_values_context: np.ndarray
    ) -> dict[str, np.ndarray]:
        """(N, 16, 3, 224, 224) x 2 -> visual_tokens (N, 2402, H), frame_indices (N, 8), frame_scores (N, 16)."""
        visual_tokens, frame_indices, frame_scores = self._run(
            VISION_ENCODER,
            {"pixel_values_videos": np.asarray(pixel_values_videos), "pixel_values_context": np.asarray(pixel_values_context)},
        )
        return {"visual_tokens": visual_tokens, "frame_indices": frame_indices, "frame_scores": frame_scores}

    def embed(self, input_ids: np.ndarray, visual_tokens: np.ndarray | None = None) -> np.ndarray:
        """Token embeddings (batch, seq, H) with `visual_tokens` (N, 2402, H) written over the `<|video_pad|>`
        positions, in batch-then-position order (as the model's `masked_scatter`)."""
        (embeds,) = self._run(EMBED_TOKENS, {"input_ids": np.asarray(input_ids, dtype=np.int64)})
        if visual_tokens is not None:
            mask = np.asarray(input_ids) == self.video_token_id
            if int(mask.sum()) != visual_tokens.shape[0] * visual_tokens.shape[1]:
                raise ValueError(
                    f"The prompt has {int(mask.sum())} video placeholders but {visual_tokens.shape[0]} x "
                    f"{visual_tokens.shape[1]} visual tokens were given; build it with the processor."
                )
            embeds[mask] = visual_tokens.reshape(-1, embeds.shape[-1]).astype(embeds.dtype)
        return embeds

    def empty_past(self, batch_size: int) -> dict[str, np.ndarray]:
        """A KV cache of length 0: `past_key_values.{i}.key/value` of shape (batch, kv_heads, 0, head_dim)."""
        dtype = self.input_types[DECODER]["past_key_values.0.key"]
        shape = (batch_size, self.num_key_value_heads, 0, self.head_dim)
        return {
            f"past_key_values.{i}.{kind}": np.zeros(shape, dtype=dtype)
            for i in range(self.num_layers)
            for kind in ("key", "value")
        }

    def decode_step(
        self,
        inputs_embeds: np.ndarray,
        attention_mask: np.ndarray,
        position_ids: np.ndarray,
        past: dict[str, np.ndarray],
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One decoder call: inputs_embeds (batch, seq, H), attention_mask (batch, past + seq), position_ids
        (batch, seq) -> logits (batch, seq, vocab) and the cache extended by seq."""
        outputs = self._run(
            DECODER, {"inputs_embeds": inputs_embeds, "attention_mask": attention_mask, "position_ids": position_ids, **past}
        )
        names = [output.name for output in self.sessions[DECODER].get_outputs()]
        present = {name.replace("present", "past_key_values"): value for name, value in zip(names[1:], outputs[1:])}
        return outputs[0], present

    def generate(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray | None = None,
        pixel_values_videos: np.ndarray | None = None,
        pixel_values_context: np.ndarray | None = None,
        visual_tokens: np.ndarray | None = None,
        max_new_tokens: int = 32,
        do_sample: bool | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> np.ndarray:
        """Greedy or sampled generation with the KV cache, as `model.generate` (prompt left padded).

        Args:
            input_ids, attention_mask: (batch, seq) from the processor.
            pixel_values_videos, pixel_values_context: (N, 16, 3, 224, 224) video pixels, or `visual_tokens`
                (N, 2402, H) from `get_video_features` (a follow-up question skips the vision encoder).
            do_sample, temperature, top_k, top_p: as in transformers (defaults: `generation_config.json`, else
                greedy); sampling applies temperature, then top-k, then top-p.
            seed: seed of the sampling generator.
        Returns:
            (batch, seq + new) token ids: the prompt followed by the generated tokens, `pad_token_id` after an EOS.
        """
        settings = {"do_sample": False, "temperature": 1.0, "top_k": 0, "top_p": 1.0, **self.generation_defaults}
        for key, value in (("do_sample", do_sample), ("temperature", temperature), ("top_k", top_k), ("top_p", top_p)):
            if value is not None:
                settings[key] = value
        input_ids = np.asarray(input_ids, dtype=np.int64)
        batch = input_ids.shape[0]
        mask = np.ones_like(input_ids) if attention_mask is None else np.asarray(attention_mask, dtype=np.int64)
        if pixel_values_videos is not None:
            visual_tokens = self.get_video_features(pixel_values_videos, pixel_values_context)["visual_tokens"]
        embeds = self.embed(input_ids, visual_tokens)
        # As transformers: positions count the attended tokens; padding positions get 1.
        position_ids = np.where(mask == 0, 1, np.cumsum(mask, axis=-1) - 1)
        past = self.empty_past(batch)
        rng = np.random.default_rng(seed)
        finished = np.zeros(batch, dtype=bool)
        tokens = []
        for _ in range(max_new_tokens):
            logits, past = self.decode_step(embeds, mask, position_ids, past)
            scores = logits[:, -1].astype(np.float32)
            next_tokens = _sample(scores, rng, **settings) if settings["do_sample"] else scores.argmax(-1)
            next_tokens = np.where(finished, self.pad_token_id, next_tokens)
            tokens.append(next_tokens)
            finished |= np.isin(next_tokens, self.eos_token_ids)
            if finished.all():
                break
            embeds = self.embed(next_tokens[:, None])
            position_ids = position_ids[:, -1:] + 1
            mask = np.concatenate([mask, np.ones((batch, 1), dtype=np.int64)], axis=1)
        return np.concatenate([input_ids, np.stack(tokens, axis=1)], axis=1)

    def answer(self, video: str | os.PathLike, question: str, max_new_tokens: int = 64, **generate_kwargs) -> str:
        """Answer one question about one video file (decoded and preprocessed by the processor)."""
        messages = [{"role": "user", "content": [{"type": "video", "path": str(video)}, {"type": "text", "text": question}]}]
        inputs = self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="np"
        )
        ids = self.generate(
            inputs["input_ids"],
            inputs["attention_mask"],
            pixel_values_videos=inputs["pixel_values_videos"],
            pixel_values_context=inputs["pixel_values_context"],
            max_new_tokens=max_new_tokens,
            **generate_kwargs,
        )
        return self.processor.decode(ids[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def _sample(
    scores: np.ndarray, rng: np.random.Generator, temperature: float, top_k: int, top_p: float, **_: Any
) -> np.ndarray:
    """One token per row of `scores` (batch, vocab): temperature, then top-k, then top-p (nucleus) filtering."""
    scores = scores / max(temperature, 1e-6)
    if top_k and top_k < scores.shape[-1]:
        kth = np.sort(scores, axis=-1)[:, -top_k][:, None]
        scores = np.where(scores < kth, -np.inf, scores)
    if top_p < 1.0:
        order = np.argsort(-scores, axis=-1)
        sorted_probs = _softmax(np.take_along_axis(scores, order, axis=-1))
        # Keep the smallest prefix whose mass reaches top_p (always at least the most likely token).
        drop_sorted = np.cumsum(sorted_probs, axis=-1) - sorted_probs >= top_p
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, axis=-1)
        scores = np.where(drop, -np.inf, scores)
    probs = _softmax(scores)
    return np.array([rng.choice(probs.shape[-1], p=row) for row in probs], dtype=np.int64)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as file:
        return json.load(file)


__all__ = ["MobileVideoGPTOnnxRunner"]
