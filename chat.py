"""A multi-turn conversation about one video that never recomputes what it has already seen.

The video is decoded and encoded once (CLIP, frame scoring, VideoMamba, both ET-Proj). The KV cache of everything
said so far is kept, so a follow-up question prefills only its own few tokens instead of the 2,400-token video
prompt. The token sequence is exactly the one a single call on the whole conversation would see (the previous
answers as generated, then `<|im_end|>\\n<|im_start|>user\\n{question}<|im_end|>\\n<|im_start|>assistant\\n`), so
greedy answers equal those of full recomputation.
"""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from .modeling.modeling_mobilevideogpt import CACHE_KWARG


@dataclass
class Turn:
    question: str
    answer: str
    seconds_to_first_token: float
    tokens_per_second: float
    new_tokens: int
    prefilled_tokens: int  # prompt tokens computed for this turn (the rest came from the cache)


class _StopOnEvent(StoppingCriteria):
    """Ends generation at the next token once any of `events` is set (the reader went away, or Stop was pressed)."""

    def __init__(self, *events: threading.Event):
        self.events = events

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        stop = any(event.is_set() for event in self.events)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class VideoChat:
    """Ask several questions about one video.

    >>> chat = VideoChat(model, processor, "clip.mp4")
    >>> for text in chat.ask("What happens?"): print(text, end="")
    >>> for text in chat.ask("And then?"): print(text, end="")   # reuses the video tokens and the KV cache

    Args:
        features: the video's `get_video_features` output when the caller has encoded it already.
        video_kwargs: processor options for decoding (`num_frames`, `fps`, `start_time`, `end_time`, ...).
    """

    def __init__(self, model, processor, video: str | Path, features=None, **video_kwargs):
        self.model, self.processor = model, processor
        self.video, self.video_kwargs = str(video), video_kwargs
        self.features = features
        self.metadata: dict | None = None  # the processor's video_metadata (sampled frames, timestamps), if decoded here
        self.ids: list[int] = []  # every token of the conversation so far
        self.cache = None  # KV cache of self.ids[:-1]
        self.turns: list[Turn] = []

    def encode(self):
        """Decode and encode the video (once); returns its `MobileVideoGPTVideoFeatures`."""
        if self.features is None:
            pixels = self.processor(videos=self.video, return_tensors="pt", **self.video_kwargs)
            self.metadata = pixels["video_metadata"][0]
            device = self.model.device
            with torch.no_grad():
                self.features = self.model.get_video_features(
                    pixels["pixel_values_videos"].to(device), pixels["pixel_values_context"].to(device)
                )
        return self.features

    def _prompt(self, question: str) -> list[int]:
        tokenizer = self.processor.tokenizer
        if not self.ids:  # first turn: the chat template, the video expanded to its placeholder tokens
            messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
            text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            text = text.replace(self.processor.video_token, self.processor.video_token * self.processor.video_tokens)
        else:
            closed = self.ids[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")
            text = ("" if closed else "<|im_end|>") + f"\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
        return self.ids + tokenizer(text, add_special_tokens=False)["input_ids"]

    def ask(self, question: str, stop: threading.Event | None = None, **generate_kwargs) -> Iterator[str]:
        """Stream the answer's text; afterwards `self.turns[-1]` holds the answer and its timings.

        Setting `stop` (or closing this iterator) ends generation at the next token; the conversation keeps what
        was generated so far, so a follow-up still lines up with the cache."""
        start = time.perf_counter()
        features = self.encode()
        ids = self._prompt(question)
        device = self.model.device
        reader_left = threading.Event()
        streamer = TextIteratorStreamer(self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(
            input_ids=torch.tensor([ids], device=device),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=device),
            streamer=streamer,
            stopping_criteria=StoppingCriteriaList([_StopOnEvent(reader_left, *([stop] if stop else []))]),
            return_dict_in_generate=True,
            num_beams=1,
            **generate_kwargs,
        )
        if self.cache is None:
            kwargs["video_features"] = features  # spliced in on the first turn; later turns find it in the cache
            cached = 0
        else:
            excess = self.cache.get_seq_length() - (len(self.ids) - 1)
            if excess > 0:  # keep exactly the tokens of self.ids[:-1] (a negative crop works in every version)
                self.cache.crop(-excess)
            kwargs[CACHE_KWARG] = self.cache
            cached = len(self.ids) - 1
        result: dict = {}

        def run() -> None:
            try:
                result["out"] = self.model.generate(**kwargs)
            except BaseException as error:  # re-raised below; end the stream so the reader does not wait forever
                result["error"] = error
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        first = None
        try:
            for piece in streamer:
                first = first or time.perf_counter()
                yield piece
        finally:
            reader_left.set()  # a no-op when generation has finished; ends it early when the reader left
            thread.join()
            if "out" in result:
                self._record(question, ids, result["out"], start, first, cached)
        if "error" in result:
            raise result["error"]

    def _record(self, question: str, prompt: list[int], out, start: float, first: float | None, cached: int) -> None:
        end = time.perf_counter()
        self.ids, self.cache = out.sequences[0].tolist(), getattr(out, CACHE_KWARG)
        new_tokens = len(self.ids) - len(prompt)
        first = first or end
        self.turns.append(
            Turn(
                question=question,
                answer=self.processor.decode(out.sequences[0, len(prompt) :], skip_special_tokens=True),
                seconds_to_first_token=first - start,
                tokens_per_second=(new_tokens - 1) / (end - first) if new_tokens > 1 and end > first else 0.0,
                new_tokens=new_tokens,
                prefilled_tokens=len(prompt) - cached,
            )
        )
