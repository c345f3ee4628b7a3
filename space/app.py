"""Mobile-VideoGPT web demo: chat about a video, see the frames the model looked at and how fast it answered.

Run `python space/app.py [--model ID] [--port N]` locally (binds 127.0.0.1) or as a Hugging Face Space (binds
0.0.0.0 when `SPACE_ID` is set). The model is `--model`, else `$MVGPT_MODEL`, else the published Hub model when the
Hub is reachable, else the embedded demo model, trained here on synthetic clips of coloured shapes (see
`mobilevideogpt.demo`).

The first question about a video decodes its sampled frames and encodes them once (CLIP, frame scoring,
VideoMamba, ET-Proj: `get_video_features`); that user's session keeps a `VideoChat` with those visual tokens and
the KV cache of the conversation, so a follow-up question prefills only its own tokens.
"""

import argparse
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import torch
from mobilevideogpt.chat import VideoChat
from mobilevideogpt.demo import DEMO_NOTICE, load_demo_model
from mobilevideogpt.demo import example_clips as shape_clips
from mobilevideogpt.processing import VideoDecodeError, read_video
from PIL import Image, ImageOps

KEY_FRAME_COLOUR = "#f97316"
THUMBNAIL_WIDTH = 240
EXAMPLES_DIR = Path(os.environ.get("MVGPT_CACHE", Path.home() / ".cache" / "mobilevideogpt")) / "space-examples"


@dataclass(frozen=True)
class Limits:
    """What one request may use. Upload size is enforced by Gradio's upload route, the rest by `ask`."""

    max_file_mb: int = 100
    max_duration_s: float = 300.0
    max_new_tokens: int = 512


@dataclass
class Session:
    """One user's conversation about one video; it lives in that user's `gr.State` only."""

    chat: list[dict[str, str]] = field(default_factory=list)  # what the Chatbot shows
    video: str | None = None  # the video the conversation is about
    conversation: VideoChat | None = None  # its visual tokens and the KV cache of everything said so far


class VideoRejected(ValueError):
    """A video the demo will not answer about; the message is for the user."""


# ---------------------------------------------------------------------------------------------------- example clips


def _write_clip(path: Path, frames: Iterator[np.ndarray], fps: int = 8) -> Path:
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps), options={"crf": "28"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def _bouncing_ball(count: int = 64) -> Iterator[np.ndarray]:
    yy, xx = np.mgrid[0:240, 0:320]
    for i in range(count):
        t = i / count
        cx, cy = 30 + 260 * abs((2 * t) % 2 - 1), 195 - 150 * abs(np.sin(3 * np.pi * t))
        frame = np.empty((240, 320, 3), np.uint8)
        frame[:], frame[215:] = (135, 190, 235), (70, 150, 60)  # sky, grass
        frame[(xx - cx) ** 2 + (yy - cy) ** 2 < 18**2] = (220, 30, 30)
        yield frame


def _traffic_light(count: int = 72) -> Iterator[np.ndarray]:
    yy, xx = np.mgrid[0:240, 0:320]
    lamps = [(60, (230, 30, 30)), (120, (240, 200, 20)), (180, (40, 200, 60))]  # red, yellow, green, top down
    for i in range(count):
        lit = 3 * i // count
        frame = np.full((240, 320, 3), 40, np.uint8)
        frame[25:215, 125:195] = 20
        for k, (cy, colour) in enumerate(lamps):
            frame[(xx - 160) ** 2 + (yy - cy) ** 2 < 24**2] = colour if k == lit else (60, 60, 60)
        yield frame


def example_clips(folder: Path = EXAMPLES_DIR) -> list[list[str]]:
    """Writes the example clips once (about 60 KB in all); returns their `[video, question]` rows."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, frames, question in [
        ("bouncing-ball.mp4", _bouncing_ball, "What does the red ball do?"),
        ("traffic-light.mp4", _traffic_light, "In which order do the lights turn on?"),
    ]:
        path = folder / name
        if not path.exists():
            _write_clip(folder / f"partial-{name}", frames()).rename(path)
        rows.append([str(path), question])
    return rows


# -------------------------------------------------------------------------------------------------------- the model


class LoadedModel:
    """The loaded model and processor, and what the UI asks of them."""

    def __init__(self, model, processor, description: str, limits: Limits):
        self.model, self.processor, self.description, self.limits = model, processor, description, limits
        self.config = model.config
        self.embedded = description == DEMO_NOTICE

    @property
    def device_line(self) -> str:
        return f"{self.model.device.type} · {str(self.model.dtype).removeprefix('torch.')}"

    def model_notice(self) -> str:
        c = self.config
        millions = sum(p.numel() for p in self.model.parameters()) / 1e6
        what = (
            f"It answers questions about a video from {c.num_frames} sampled frames ({c.visual_tokens_per_video:,} "
            f"visual tokens), follow-ups included. {millions:,.1f} M parameters on {self.device_line}."
        )
        if self.embedded:
            return (
                "### Embedded demo model\n"
                "Loaded: a small Mobile-VideoGPT (the real architecture at small widths) that this project trained on "
                "**synthetic clips of coloured shapes**. It answers questions about such clips only: a shape's colour "
                "or kind, which way one moves, how many shapes there are, which colour appears first or last, "
                "whether two touch. Try the examples. Every stage of the real pipeline runs (decoding, frame "
                "sampling, CLIP, frame scoring, VideoMamba, ET-Proj, Qwen2 with a KV cache). Start the app with "
                f"`--model <Hub id or folder>` or `MVGPT_MODEL` for the full model. {what}"
            )
        return f"### Model: {self.description}\n{what}"

    def frame_count_note(self) -> str:
        c = self.config
        return (
            f"Fixed by the architecture: frame scoring splits the {c.num_frames} frames into {c.num_chunks} chunks "
            f"of {c.chunk_size} and keeps {c.frames_per_chunk} key frames in each, and VideoMamba takes exactly "
            f"{c.video_config.num_frames} key frames."
        )

    def encode(self, video: str) -> tuple[Any, list[tuple[Image.Image, str]], pd.DataFrame]:
        """
        Decodes and encodes `video` once: (video features, gallery of the sampled frames, frame-score table).
        Raises `VideoRejected` for a file no decoder reads or a video over the duration limit.
        """
        processor, name = self.processor, Path(video).name
        try:
            frames, metadata = read_video(
                video, num_frames=processor.num_frames, fps=processor.fps, backend=processor.video_backend
            )
        except VideoDecodeError as error:
            print(f"Rejected {video}: {error}", flush=True)  # every decoder's reason, for the server log
            raise VideoRejected(
                f"`{name}` could not be read as a video: it may not be a video file, or it is truncated or corrupt"
            ) from error
        if metadata["duration"] > self.limits.max_duration_s:
            raise VideoRejected(
                f"`{name}` lasts {metadata['duration']:.0f} s, and this demo takes videos up to "
                f"{self.limits.max_duration_s:.0f} s"
            )
        pixels = processor(videos=video, return_tensors="pt")
        with torch.inference_mode():
            features = self.model.get_video_features(
                pixels["pixel_values_videos"].to(self.model.device),
                pixels["pixel_values_context"].to(self.model.device),
            )
        key_frames = set(features.frame_indices[0].tolist())
        scores = features.frame_scores[0].float().tolist()
        times = metadata["timestamps"]
        gallery = [
            (_thumbnail(frame, p in key_frames), f"{'★ ' if p in key_frames else ''}#{p} · {times[p]:.1f} s")
            for p, frame in enumerate(frames)
        ]
        table = pd.DataFrame(
            {
                "frame": [f"#{p}" for p in range(len(scores))],
                "score": scores,
                "time": [f"{times[p]:.1f} s" if p < len(times) else "padding" for p in range(len(scores))],
                "choice": ["key frame" if p in key_frames else "not chosen" for p in range(len(scores))],
            }
        )
        return features, gallery, table


def _thumbnail(frame: np.ndarray, key: bool) -> Image.Image:
    image = Image.fromarray(frame)
    image = image.resize((THUMBNAIL_WIDTH, max(1, round(image.height * THUMBNAIL_WIDTH / image.width))))
    return ImageOps.expand(image, border=8, fill=KEY_FRAME_COLOUR) if key else image


def _with_answer(chat: list[dict[str, str]], answer: str) -> list[dict[str, str]]:
    return [*chat[:-1], {"role": "assistant", "content": answer}]


# ------------------------------------------------------------------------------------------------------------ the UI


def build_app(model: LoadedModel, examples: list[list[str]]) -> gr.Blocks:
    limits, c = model.limits, model.config

    def ask(
        video: str | None, question: str, max_new_tokens: float, decoding: str, temperature: float, top_p: float,
        session: Session,
    ) -> Iterator[tuple]:
        """Streams (chat, session, gallery, score plot, notice, speed line, question box) while answering."""
        start = time.perf_counter()
        question = question.strip()
        if not video or not question:
            notice = "Upload a video (or pick an example) and type a question."
            yield session.chat, session, gr.skip(), gr.skip(), notice, gr.skip(), gr.skip()
            return
        if video != session.video:  # a new video starts a new conversation
            session = Session()
        session.chat = [*session.chat, {"role": "user", "content": question}, {"role": "assistant", "content": "…"}]
        reused = session.conversation is not None
        if reused:
            notice = (
                f"Follow-up: reusing the video's {c.visual_tokens_per_video:,} visual tokens and the conversation's "
                "KV cache (no re-encoding, only the new question is computed)."
            )
            yield session.chat, session, gr.skip(), gr.skip(), notice, gr.skip(), ""
        else:
            yield session.chat, session, [], None, "Encoding the video (the first question about it)…", "", ""
            try:
                features, gallery, scores = model.encode(video)
            except VideoRejected as error:
                failed = _with_answer(session.chat, f"⚠️ {error}. Please try another video.")
                yield failed, Session(chat=failed), [], None, "The video was not used.", "", ""
                return
            session.video = video
            session.conversation = VideoChat(model.model, model.processor, video, features=features)
            notice = (
                f"Video encoded in {time.perf_counter() - start:.2f} s: {c.visual_tokens_per_video:,} visual tokens, "
                "kept for follow-up questions."
            )
            yield session.chat, session, gallery, scores, notice, "", ""
        encoded_at = time.perf_counter()
        generation: dict[str, Any] = {"max_new_tokens": int(max_new_tokens), "do_sample": decoding == "Sampling"}
        if decoding == "Sampling":
            generation.update(temperature=temperature, top_p=top_p)
        stop = threading.Event()
        first_token_at, text = None, ""
        try:
            for piece in session.conversation.ask(question, stop=stop, **generation):
                text += piece
                first_token_at = first_token_at or (time.perf_counter() if text else None)
                session.chat = _with_answer(session.chat, text or "…")
                yield session.chat, session, gr.skip(), gr.skip(), notice, gr.skip(), ""
        finally:
            stop.set()  # the request ended early (user left, Stop pressed): generation ends at the next token
        end = time.perf_counter()
        turn = session.conversation.turns[-1]
        session.chat = _with_answer(session.chat, turn.answer or "_(no text: only whitespace or special tokens)_")
        first_token_at = first_token_at or end
        rate = (turn.new_tokens - 1) / (end - first_token_at) if turn.new_tokens > 1 and end > first_token_at else 0.0
        speed = (
            f"**Speed:** first token {first_token_at - start:.2f} s"
            + (
                f" (visual tokens and KV cache reused: {turn.prefilled_tokens} prompt tokens computed)"
                if reused else f" (video encoding {encoded_at - start:.2f} s of it)"
            )
            + f" · {rate:.1f} tokens/s · {turn.new_tokens} new tokens · {c.visual_tokens_per_video:,} visual tokens"
            + f" · {model.device_line}"
        )
        yield session.chat, session, gr.skip(), gr.skip(), notice, speed, ""

    with gr.Blocks(title="Mobile-VideoGPT") as app:
        session = gr.State(Session(), time_to_live=3600)  # each user gets a copy
        gr.Markdown(
            "# Mobile-VideoGPT\nUpload a video (or pick an example) and ask about it; answers stream as they are "
            "generated. Follow-up questions reuse the video's encoded visual tokens."
        )
        gr.Markdown(model.model_notice(), elem_id="model-notice")
        with gr.Row():
            with gr.Column(scale=2):
                video = gr.Video(
                    label=f"Video (up to {limits.max_file_mb} MB and {limits.max_duration_s:.0f} s)",
                    sources=["upload"], include_audio=True, height=280, elem_id="video",
                )
                question = gr.Textbox(label="Question", placeholder="What happens in this video?", elem_id="question")
                gr.Examples(examples, inputs=[video, question], label="Example clips (generated by the app)")
                with gr.Accordion("Settings", open=False, elem_id="settings"):
                    max_new_tokens = gr.Slider(1, limits.max_new_tokens, value=64, step=1, label="Max new tokens")
                    decoding = gr.Radio(["Greedy", "Sampling"], value="Greedy", label="Decoding")
                    temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="Temperature", visible=False)
                    top_p = gr.Slider(0.05, 1.0, value=0.95, step=0.05, label="Top-p", visible=False)
                    gr.Number(c.num_frames, label="Frames per video", interactive=False, info=model.frame_count_note())
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat", height=400, elem_id="chat")
                with gr.Row():
                    ask_button = gr.Button("Ask", variant="primary", elem_id="ask")
                    stop_button = gr.Button("Stop")
                notice = gr.Markdown(label="notice", elem_id="notice")
                speed = gr.Markdown(label="speed", elem_id="speed")
        gallery = gr.Gallery(
            label=f"The {c.num_frames} sampled frames and their times (★ and orange border: the key frames)",
            columns=8, rows=2, height=None, object_fit="contain", elem_id="frames",
        )
        plot = gr.BarPlot(
            x="frame", y="score", color="choice", color_map={"key frame": KEY_FRAME_COLOUR, "not chosen": "#94a3b8"},
            label=f"Frame scores: attention each frame receives within its chunk of {c.chunk_size}; the top "
            f"{c.frames_per_chunk} of each chunk are key frames",
            x_title="sampled frame", sort=[f"#{p}" for p in range(c.num_frames)], tooltip=["time"], height=320,
            elem_id="scores",
        )

        video.change(
            lambda: (Session(), [], [], None, "", ""), outputs=[session, chatbot, gallery, plot, notice, speed],
            queue=False, api_visibility="private",
        )
        decoding.change(
            lambda mode: [gr.update(visible=mode == "Sampling")] * 2, decoding, [temperature, top_p],
            queue=False, api_visibility="private",
        )
        inputs = [video, question, max_new_tokens, decoding, temperature, top_p, session]
        outputs = [chatbot, session, gallery, plot, notice, speed, question]
        asked = ask_button.click(ask, inputs, outputs, api_name="ask")
        submitted = question.submit(ask, inputs, outputs, api_visibility="private")
        stop_button.click(None, cancels=[asked, submitted], api_visibility="private")
    return app


def main(argv: list[str] | None = None) -> None:
    on_space = "SPACE_ID" in os.environ
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="Hub id or folder (default: $MVGPT_MODEL, the Hub model, or the embedded one)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--dtype", choices=["float32", "bfloat16", "float16"],
        help="language-model dtype (default: bfloat16 on GPU, float32 on CPU, where bfloat16 matmuls are slow)",
    )
    parser.add_argument("--host", default="0.0.0.0" if on_space else "127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--concurrency", type=int, default=1, help="answers computed at once (the rest queue)")
    parser.add_argument("--queue-size", type=int, default=32, help="requests waiting at most; more are turned away")
    parser.add_argument("--max-file-mb", type=int, default=Limits.max_file_mb)
    parser.add_argument("--max-duration", type=float, default=Limits.max_duration_s, help="seconds")
    args = parser.parse_args(argv)

    dtype = getattr(torch, args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32"))
    model, processor, description = load_demo_model(args.model, dtype=dtype)
    loaded = LoadedModel(model.to(args.device), processor, description, Limits(args.max_file_mb, args.max_duration))
    print(f"Model: {description} ({loaded.device_line})", flush=True)
    if loaded.embedded:  # clips of the kind it was trained on
        examples = [[str(path), question] for path, question in shape_clips(EXAMPLES_DIR, count=4)]
    else:
        examples = example_clips()
    app = build_app(loaded, examples)
    app.queue(max_size=args.queue_size, default_concurrency_limit=args.concurrency)
    app.launch(
        server_name=args.host, server_port=args.port, max_file_size=f"{args.max_file_mb}mb",
        allowed_paths=[str(EXAMPLES_DIR)], show_error=True, theme=gr.themes.Soft(), prevent_thread_lock=True,
    )
    print(f"Mobile-VideoGPT demo running at {app.local_url}", flush=True)
    app.block_thread()


if __name__ == "__main__":
    main()
