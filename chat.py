"""A multi-turn conversation about one video that never recomputes what it has already seen.

The video is decoded and encoded once (CLIP, frame scoring, VideoMamba, both ET-Proj). The KV cache of everything
said so far is kept, so a follow-up question prefills only its own few tokens instead of the 2,400-token video
prompt. The token sequence is exactly the one a single call on the whole conversation would see (the previous
answers as generated, then `<|im_end|>\\n<|im_start|>user\\n{question}<|im_end|>\\n<|im_start|>assistant\\n`), so
greedy answers equal those of full recomputation.
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from threading import Thread

import torch
from transformers import TextIteratorStreamer


@dataclass
class Turn:
    question: str
    answer: str
    seconds_to_first_token: float
    tokens_per_second: float
    new_tokens: int
    prefilled_tokens: int  # prompt tokens computed for this turn (the rest came from the cache)


class VideoChat:
    """Ask several questions about one video.

    >>> chat = VideoChat(model, processor, "clip.mp4")
    >>> for text in chat.ask("What happens?"): print(text, end="")
    >>> for text in chat.ask("And then?"): print(text, end="")   # reuses the video tokens and the KV cache
    """

    def __init__(self, model, processor, video: str | Path, **video_kwargs):
        self.model, self.processor = model, processor
        self.video, self.video_kwargs = str(video), video_kwargs
        self.features = None  # MobileVideoGPTVideoFeatures, once encoded
        self.metadata: dict | None = None
        self.ids: list[int] = []  # every token of the conversation so far
        self.cache = None
        self.turns: list[Turn] = []

    def _first_prompt(self, question: str) -> torch.Tensor:
        messages = [{"role": "user", "content": [{"type": "video", "path": self.video}, {"type": "text", "text": question}]}]
        inputs = self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt",
            **self.video_kwargs,
        )
        self.metadata = inputs["video_metadata"][0]
        with torch.no_grad():
            self.features = self.model.get_video_features(inputs["pixel_values_videos"], inputs["pixel_values_context"])
        return inputs["input_ids"][0]

    def _follow_up(self, question: str) -> torch.Tensor:
        closed = self.ids[-1] == self.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
        text = ("" if closed else "<|im_end|>") + f"\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
        suffix = self.processor.tokenizer(text, add_special_tokens=False)["input_ids"]
        return torch.tensor(self.ids + suffix)

    def ask(self, question: str, **generate_kwargs) -> Iterator[str]:
        """Stream the answer's text; afterwards `self.turns[-1]` holds the answer and its timings."""
        start = time.perf_counter()
        first_turn = self.features is None
        ids = self._first_prompt(question) if first_turn else self._follow_up(question)
        cached = 0 if self.cache is None else self.cache.get_seq_length()
        streamer = TextIteratorStreamer(self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(
            input_ids=ids[None], attention_mask=torch.ones_like(ids)[None], streamer=streamer,
            return_dict_in_generate=True, num_beams=1, **generate_kwargs,
        )
        # The video's tokens are spliced in on the first turn; later turns find them in the cache.
        if first_turn:
            kwargs["video_features"] = self.features
        else:
            kwargs["past_key_values"] = self.cache
        result: dict = {}

        def run() -> None:
            try:
                result["out"] = self.model.generate(**kwargs)
            except BaseException as error:  # re-raised below; end the stream so the reader does not wait forever
                result["error"] = error
                streamer.end()

        thread = Thread(target=run)
        thread.start()
        first, pieces = None, []
        for piece in streamer:
            first = first or time.perf_counter()
            pieces.append(piece)
            yield piece
        thread.join()
        if "error" in result:
            raise result["error"]
        end = time.perf_counter()
        out = result["out"]
        self.ids, self.cache = out.sequences[0].tolist(), out.past_key_values
        new_tokens = len(self.ids) - len(ids)
        first = first or end
        self.turns.append(
            Turn(
                question=question,
                answer=self.processor.decode(out.sequences[0, len(ids) :], skip_special_tokens=True),
                seconds_to_first_token=first - start,
                tokens_per_second=(new_tokens - 1) / (end - first) if new_tokens > 1 and end > first else 0.0,
                new_tokens=new_tokens,
                prefilled_tokens=len(ids) - cached,
            )
        )
