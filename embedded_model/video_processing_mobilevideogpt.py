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
Video decoding, frame sampling and the VideoMamba pixel pipeline of Mobile-VideoGPT.

Data flow: a video (path, bytes, file object or decoded frames) -> [`sample_frame_indices`] picks at most 16 frame
positions exactly as the original inference code did -> a decoder backend decodes only those frames (uint8 RGB,
rotation metadata applied) -> the same frames feed two pixel pipelines: [`videomamba_pixel_values`] here (squash
resize to 224 with OpenCV bilinear, ImageNet normalisation in float64) and the CLIP image processor in
`processing_mobilevideogpt.py`.

Decoder backends, tried in this order when none is named: decord (what the original used), PyAV, torchcodec, OpenCV.
decord, PyAV and torchcodec number frames the same way (the i-th frame in presentation order of the video packets)
and return the same pixels; OpenCV computes positions from the container's frame rate, which only agrees for
constant frame rate videos. Only torch, transformers, numpy and the standard library are imported at module level;
every decoder (and OpenCV, PIL) is imported when used.

Rules for unusual input (each either works as described or raises [`VideoDecodeError`], a `ValueError` that names the
input and the reason):
- missing, empty, non-video (text, audio-only) or undecodable files raise;
- a truncated file whose index survives (mkv, webm, avi) is the video it still contains: frames are counted from the
  complete packets present, as decord counts them; one that lost its index (an mp4 cut before its `moov`) raises, as
  does any file whose sampled frames cannot all be decoded;
- decord 0.6 fails on some narrow frame widths (16 and 48 pixels, e.g. a 16x4000 video); when no backend is named
  the next one (PyAV) decodes the video instead;
- a video with fewer frames than requested keeps all its frames (1 frame included); the pixel tensors are padded
  with zeros after normalisation to `num_frames`, as the original did;
- rotation metadata (phone videos) is applied, as decord does: frames come out upright;
- greyscale frames are replicated to RGB, an alpha channel is dropped;
- variable frame rate videos are indexed by frame (presentation order), sampled with the average frame rate, and
  reported with each sampled frame's real timestamp.
"""

from __future__ import annotations

import abc
import io
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch


IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
VIDEO_BACKENDS = ("decord", "pyav", "torchcodec", "opencv")

# OpenCV's fixed-point bilinear resize of 8-bit images (imgproc/src/resize.cpp): weights scaled by 2**11.
INTER_RESIZE_COEF_BITS = 11
INTER_RESIZE_COEF_SCALE = 1 << INTER_RESIZE_COEF_BITS

VideoSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO
"""A video file: a path, its bytes, or a binary file object."""

VideoInput = VideoSource | np.ndarray | torch.Tensor | Sequence[Any]
"""A video file, or its frames: a `(T, H, W, C)` uint8 array or tensor, or a list of PIL images / `(H, W, C)` arrays."""


class VideoDecodeError(ValueError):
    """Raised when a video cannot be read; the message names the input and the reason."""


def describe_source(video: Any) -> str:
    """A short, human-readable name for a video input, used in error messages and metadata."""
    if isinstance(video, (str, os.PathLike)):
        return os.fspath(video)
    if isinstance(video, (bytes, bytearray, memoryview)):
        return f"<{len(video)} bytes>"
    if hasattr(video, "read"):
        return f"<file object {getattr(video, 'name', type(video).__name__)}>"
    if isinstance(video, (np.ndarray, torch.Tensor)):
        return f"<{type(video).__name__} of shape {tuple(video.shape)}>"
    return f"<{type(video).__name__}>"


def sample_frame_indices(
    total_frames: int,
    video_fps: float,
    num_frames: int = 16,
    fps: float = 1.0,
    start_time: float | None = None,
    end_time: float | None = None,
    min_frames: int | None = None,
) -> list[int]:
    """
    Picks the frame positions to decode, exactly as Mobile-VideoGPT's inference code (`_get_rawvideo_dec`) does.

    1. Positions one `1 / fps` second apart: stride `round(video_fps / fps)` from the first to the last frame.
    2. More than `num_frames` positions: keep `num_frames` of them at `numpy.linspace(0, n - 1, num_frames)` (floored).
    3. Fewer than `min_frames` (default `num_frames`): resample the range uniformly with stride
       `(last - first) // (min_frames - 1)`; a range shorter than `min_frames` frames keeps every frame.
    4. Otherwise keep the positions.

    Departures from the original, where it would crash: a stride of 0 (a video slower than `fps / 2` frames per
    second) becomes 1, and a single frame is returned as `[first]` (the original divides by zero).

    Args:
        total_frames (`int`): number of frames in the video.
        video_fps (`float`): the video's average frame rate.
        num_frames (`int`, *optional*, defaults to 16): maximum number of positions (the original's `max_frames`).
        fps (`float`, *optional*, defaults to 1.0): sampling rate in frames per second (the original's
            `video_framerate`).
        start_time (`float`, *optional*), end_time (`float`, *optional*):
            Restrict sampling to this span, in seconds. As in the original, negative values count as 0, reversed
            bounds are swapped and equal bounds span one second; the original truncated them to whole seconds,
            fractions are kept here.
        min_frames (`int`, *optional*):
            Fewer positions than this are resampled. Inference uses `num_frames` (the default); the original's
            training data loader used 8, so clips of 8-15 s keep one frame per second there (spec Q-28).

    Returns:
        `list[int]`: increasing frame positions, at most `num_frames` of them.
    """
    if total_frames < 1:
        raise ValueError(f"the video has no frames (total_frames={total_frames})")
    if not (video_fps > 0 and math.isfinite(video_fps)):
        raise ValueError(f"the video has no usable frame rate (fps={video_fps})")
    if num_frames < 1 or not fps > 0:
        raise ValueError(f"num_frames must be >= 1 and fps > 0, got num_frames={num_frames}, fps={fps}")

    first, last = 0, total_frames - 1
    if start_time is not None or end_time is not None:
        start = max(float(start_time or 0.0), 0.0)
        end = max(float(end_time), 0.0) if end_time is not None else math.inf
        if start > end:
            start, end = end, start
        elif start == end:
            end = start + 1
        first = int(start * video_fps)
        last = int(min(end * video_fps, total_frames - 1))
        if first > last:
            raise ValueError(
                f"start_time={start_time} is past the end of the video ({total_frames} frames at {video_fps:g} fps)"
            )

    stride = max(1, round(video_fps / fps))
    positions = list(range(first, last + 1, stride))
    if len(positions) > num_frames:
        return [positions[i] for i in np.linspace(0, len(positions) - 1, num=num_frames, dtype=int)]
    min_frames = num_frames if min_frames is None else min(min_frames, num_frames)
    if len(positions) < min_frames:
        count = min(min_frames, last - first + 1)
        if count == 1:
            return [first]
        stride = max(1, (last - first) // (count - 1))
        return list(range(first, first + stride * (count - 1) + 1, stride))
    return positions


# ----------------------------------------------------------------------------------------------------------------
# Decoder backends. Each opens a source, reports `total_frames` and `fps`, and decodes a list of frame positions into
# a (T, H, W, 3) uint8 RGB array plus the frames' timestamps in seconds.
# ----------------------------------------------------------------------------------------------------------------


class _VideoReader(abc.ABC):
    """Base class of the decoder backends (a context manager)."""

    name: str
    total_frames: int
    fps: float

    @abc.abstractmethod
    def read(self, indices: list[int]) -> tuple[np.ndarray, list[float]]:
        """Decodes the frames at `indices`: `(T, H, W, 3)` uint8 RGB and their timestamps in seconds."""

    def close(self) -> None:
        pass

    def __enter__(self) -> _VideoReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class _DecordReader(_VideoReader):
    name = "decord"

    def __init__(self, source: str | BinaryIO):
        try:  # optional imports sit in try blocks: transformers' remote-code check then does not require them
            import decord
        except ImportError as error:
            raise VideoDecodeError("decord is not installed") from error

        self._reader = decord.VideoReader(source, ctx=decord.cpu(0), num_threads=1)
        self.total_frames = len(self._reader)
        self.fps = float(self._reader.get_avg_fps())

    def read(self, indices):
        frames = self._reader.get_batch(indices).asnumpy()
        timestamps = self._reader.get_frame_timestamp(indices)[:, 0].astype(float).tolist()
        return frames, timestamps

    def close(self):
        del self._reader


class _PyAVReader(_VideoReader):
    """
    PyAV backend with decord's frame numbering. Opening reads the packet headers (no decoding, like decord does) to
    learn every frame's presentation timestamp and the key frames; reading seeks to the key frame before each wanted
    frame and decodes forward to it, so the cost depends on the number of sampled frames and the key frame interval,
    not on the length of the video.
    """

    name = "pyav"

    def __init__(self, source: str | BinaryIO):
        try:
            import av
        except ImportError as error:
            raise VideoDecodeError("PyAV is not installed") from error

        self._container = av.open(source, mode="r", metadata_errors="ignore")
        try:
            if not self._container.streams.video:
                raise VideoDecodeError("the file has no video stream")
            self._stream = self._container.streams.best("video")
            timestamps, key_timestamps = [], []
            for packet in self._container.demux(self._stream):
                if packet.size == 0:  # the flush packet PyAV yields at the end
                    continue
                timestamp = packet.pts if packet.pts is not None else packet.dts
                if timestamp is None:
                    raise VideoDecodeError("the video packets carry no timestamps")
                timestamps.append(timestamp)
                if packet.is_keyframe:
                    key_timestamps.append(timestamp)
            self._pts = np.sort(np.asarray(timestamps, dtype=np.int64))
            self._key_pts = np.unique(np.asarray(key_timestamps or self._pts[:1], dtype=np.int64))
            self.total_frames = len(self._pts)
            self.fps = self._average_fps()
        except BaseException:
            self._container.close()
            raise

    def _average_fps(self) -> float:
        stream = self._stream
        for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
            if rate is not None and rate > 0:
                return float(rate)
        return math.nan

    def _seconds(self, pts: int) -> float:
        start = self._stream.start_time or 0
        return float((pts - start) * self._stream.time_base)

    def _decode_from(self, target: int) -> Iterator[Any]:
        """
        Frames decoded from the last key frame at or before `target` on. If decoding after a seek starts past
        `target` (an open GOP, an inexact index) the two key frames before it are tried, then the start of the file.
        """
        for key in self._key_pts[self._key_pts <= target][::-1][:3].tolist():
            self._container.seek(key, backward=True, any_frame=False, stream=self._stream)
            frames = self._container.decode(self._stream)
            first = next(frames, None)
            if first is not None and (first.pts is None or first.pts <= target):
                return _chain(first, frames)
        self._container.seek(0)
        return self._container.decode(self._stream)

    def read(self, indices):
        wanted = {int(self._pts[i]): i for i in indices}
        decoded: dict[int, np.ndarray] = {}
        frames, last_pts = None, None
        for target in sorted(wanted):
            if target in decoded:
                continue
            key = self._key_pts[self._key_pts <= target]
            continue_forward = (
                frames is not None
                and last_pts is not None
                and last_pts < target
                and (key.size == 0 or key[-1] <= last_pts)
            )
            if not continue_forward:
                frames = self._decode_from(target)
            for frame in frames:
                if frame.pts is None:
                    continue
                last_pts = frame.pts
                if frame.pts in wanted and frame.pts not in decoded:
                    decoded[frame.pts] = _frame_to_rgb(frame)
                if frame.pts >= target:
                    break
        missing = [wanted[pts] for pts in sorted(wanted) if pts not in decoded]
        if missing:
            raise VideoDecodeError(f"frames {missing} could not be decoded (truncated or corrupt file?)")
        frames_by_index = {index: decoded[pts] for pts, index in wanted.items()}
        return (
            np.stack([frames_by_index[i] for i in indices]),
            [self._seconds(int(self._pts[i])) for i in indices],
        )

    def close(self):
        self._container.close()


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _frame_to_rgb(frame: Any) -> np.ndarray:
    """A PyAV video frame as an upright (H, W, 3) uint8 RGB array (display rotation applied, like decord)."""
    rgb = frame.to_ndarray(format="rgb24")
    rotation = round(frame.rotation) % 360
    if rotation % 90 == 0 and rotation:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
    return rgb


class _TorchCodecReader(_VideoReader):
    name = "torchcodec"

    def __init__(self, source: str | BinaryIO):
        try:
            from torchcodec.decoders import VideoDecoder
        except ImportError as error:
            raise VideoDecodeError("torchcodec is not installed") from error

        self._decoder = VideoDecoder(source, seek_mode="exact", dimension_order="NHWC")
        metadata = self._decoder.metadata
        self.total_frames = int(metadata.num_frames)
        self.fps = float(metadata.average_fps) if metadata.average_fps else math.nan
        self._begin = float(metadata.begin_stream_seconds or 0.0)

    def read(self, indices):
        batch = self._decoder.get_frames_at(indices)
        return batch.data.numpy(), [float(t) - self._begin for t in batch.pts_seconds]


class _OpenCVReader(_VideoReader):
    """
    OpenCV backend: frame positions come from the container's frame count and rate (constant frame rate only).
    OpenCV's own auto-rotation differs between versions, so it is turned off and the rotation applied here.
    """

    name = "opencv"

    def __init__(self, source: str):
        try:
            import cv2
        except ImportError as error:
            raise VideoDecodeError("OpenCV is not installed") from error

        self._cv2 = cv2
        self._capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG)
        if not self._capture.isOpened():
            raise VideoDecodeError("OpenCV could not open the file")
        self.total_frames = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        self._capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
        clockwise = round(self._capture.get(cv2.CAP_PROP_ORIENTATION_META)) % 360
        self._turns = (360 - clockwise) // 90 % 4 if clockwise % 90 == 0 else 0  # counter-clockwise quarter turns
        self._position = 0

    def read(self, indices):
        frames = []
        for index in indices:
            if index != self._position:
                self._capture.set(self._cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = self._capture.read()
            if not ok:
                raise VideoDecodeError(f"frame {index} could not be decoded (truncated or corrupt file?)")
            self._position = index + 1
            frames.append(np.rot90(frame[..., ::-1], k=self._turns))  # BGR -> RGB, upright
        return np.ascontiguousarray(np.stack(frames)), [index / self.fps for index in indices]

    def close(self):
        self._capture.release()


_READERS = {"decord": _DecordReader, "pyav": _PyAVReader, "torchcodec": _TorchCodecReader, "opencv": _OpenCVReader}
_MODULES = {"decord": "decord", "pyav": "av", "torchcodec": "torchcodec", "opencv": "cv2"}


def available_backends() -> list[str]:
    """The installed decoder backends, in the order they are tried."""
    import importlib.util

    return [name for name in VIDEO_BACKENDS if importlib.util.find_spec(_MODULES[name]) is not None]


def _check_source(video: VideoSource) -> None:
    """Rejects inputs no backend can read, with a clear reason, before any decoder sees them."""
    if isinstance(video, (str, os.PathLike)):
        path = Path(video)
        if not path.exists():
            raise VideoDecodeError(f"Cannot read video {describe_source(video)!r}: file not found")
        if not path.is_file():
            raise VideoDecodeError(f"Cannot read video {describe_source(video)!r}: not a regular file")
        if path.stat().st_size == 0:
            raise VideoDecodeError(f"Cannot read video {describe_source(video)!r}: the file is empty")
    elif isinstance(video, (bytes, bytearray, memoryview)) and len(video) == 0:
        raise VideoDecodeError("Cannot read video <0 bytes>: the input is empty")


def _open_reader(backend: str, video: VideoSource, scratch: list[str]) -> _VideoReader:
    """Opens `video` with one backend, adapting the source to what that backend accepts."""
    if isinstance(video, (str, os.PathLike)):
        return _READERS[backend](os.fspath(video))
    if isinstance(video, (bytes, bytearray, memoryview)):
        data = bytes(video)
    else:
        video.seek(0)
        if backend != "opencv":
            return _READERS[backend](video)
        data = video.read()
    if backend == "opencv":  # OpenCV reads files only
        if not scratch:
            handle, name = tempfile.mkstemp(suffix=".video")
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            scratch.append(name)
        return _OpenCVReader(scratch[0])
    return _READERS[backend](io.BytesIO(data))


def read_video(
    video: VideoSource,
    num_frames: int = 16,
    fps: float = 1.0,
    start_time: float | None = None,
    end_time: float | None = None,
    backend: str | None = None,
    min_frames: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """
    Decodes the frames Mobile-VideoGPT samples from a video file, and nothing else.

    Args:
        video (`str`, `os.PathLike`, `bytes` or binary file object):
            The video file. decord reads a file object (or bytes) fully into memory; the other backends stream it.
        num_frames (`int`, *optional*, defaults to 16): maximum number of frames to sample.
        fps (`float`, *optional*, defaults to 1.0): sampling rate before the uniform subsampling to `num_frames`.
        start_time (`float`, *optional*), end_time (`float`, *optional*): span to sample from, in seconds.
        backend (`str`, *optional*):
            One of `"decord"`, `"pyav"`, `"torchcodec"`, `"opencv"`. When unset, the installed backends are tried in
            that order and the first that decodes the video wins.
        min_frames (`int`, *optional*): see [`sample_frame_indices`].

    Returns:
        `tuple[np.ndarray, dict]`: the frames, shape `(T, H, W, 3)` uint8 RGB with `1 <= T <= num_frames`, and the
        metadata dict `{"frame_indices", "timestamps", "num_real_frames", "fps", "total_frames", "duration",
        "backend", "source"}`.

    Raises:
        [`VideoDecodeError`]: the input cannot be read (the message names it and says why).
    """
    name = describe_source(video)
    if backend is not None and backend not in VIDEO_BACKENDS:
        raise ValueError(f"Unknown video backend {backend!r}; choose one of {VIDEO_BACKENDS}")
    _check_source(video)
    installed = available_backends()
    if backend is not None and backend not in installed:
        raise ValueError(f"Video backend {backend!r} is not installed (installed: {installed})")
    candidates = [backend] if backend is not None else installed
    if not candidates:
        raise ImportError("Reading video files needs one of decord, av (PyAV), torchcodec or opencv-python")

    failures, scratch = [], []
    try:
        for candidate in candidates:
            try:
                with _open_reader(candidate, video, scratch) as reader:
                    indices = sample_frame_indices(
                        reader.total_frames, reader.fps, num_frames, fps, start_time, end_time, min_frames
                    )
                    frames, timestamps = reader.read(indices)
                    if frames.shape[0] != len(indices):
                        raise VideoDecodeError(f"{frames.shape[0]} frames decoded instead of {len(indices)}")
                    metadata = {
                        "frame_indices": indices,
                        "timestamps": timestamps,
                        "num_real_frames": len(indices),
                        "fps": reader.fps,
                        "total_frames": reader.total_frames,
                        "duration": reader.total_frames / reader.fps,
                        "backend": reader.name,
                        "source": name,
                    }
                    return to_rgb_frames(frames), metadata
            except Exception as error:  # decoders raise many types (decord's DECORDError is not even a RuntimeError)
                failures.append(f"{candidate}: {_first_line(error)}")
    finally:
        for path in scratch:
            os.unlink(path)
    raise VideoDecodeError(f"Cannot read video {name!r}: " + "; ".join(failures))


def _first_line(error: Exception) -> str:
    message = str(error).strip()
    return message.splitlines()[0] if message else type(error).__name__


def to_rgb_frames(frames: np.ndarray | torch.Tensor) -> np.ndarray:
    """
    Normalises frames to RGB: greyscale `(T, H, W, 1)` is replicated to three channels, grey + alpha `(T, H, W, 2)` and
    RGBA `(T, H, W, 4)` lose their alpha channel.

    Returns:
        `np.ndarray` of shape `(T, H, W, 3)`, dtype uint8, C-contiguous.
    """
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    if frames.dtype != np.uint8:
        raise VideoDecodeError(f"Unsupported frames {describe_source(frames)}: dtype {frames.dtype}, expected uint8")
    if frames.ndim != 4 or frames.shape[-1] not in (1, 2, 3, 4) or 0 in frames.shape:
        raise VideoDecodeError(
            f"Unsupported frames {describe_source(frames)}: expected shape (T, H, W, C) with C in 1..4"
        )
    if frames.shape[-1] in (1, 2):  # grey, grey + alpha
        frames = np.repeat(frames[..., :1], 3, axis=-1)
    return np.ascontiguousarray(frames[..., :3])


def load_frames(
    video: VideoInput,
    num_frames: int = 16,
    fps: float = 1.0,
    start_time: float | None = None,
    end_time: float | None = None,
    backend: str | None = None,
    input_fps: float = 3.0,
    min_frames: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """
    Samples a video given as a file or as frames; the same rule applies to both.

    Frames (a `(T, H, W, C)` uint8 array or tensor, or a list of PIL images / `(H, W, C)` arrays) are treated as a
    video playing at `input_fps` (default 3, the rate the original assumed for frame folders) and sampled with
    [`sample_frame_indices`]. A single PIL image or `(H, W, C)` array is a 1-frame video.

    Returns:
        Same as [`read_video`]; `"backend"` is `"frames"` for frame input.
    """
    if isinstance(video, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(video, "read"):
        return read_video(video, num_frames, fps, start_time, end_time, backend, min_frames)
    frames = frames_from_images(video)
    indices = sample_frame_indices(len(frames), input_fps, num_frames, fps, start_time, end_time, min_frames)
    metadata = {
        "frame_indices": indices,
        "timestamps": [index / input_fps for index in indices],
        "num_real_frames": len(indices),
        "fps": float(input_fps),
        "total_frames": len(frames),
        "duration": len(frames) / input_fps,
        "backend": "frames",
        "source": describe_source(video),
    }
    return frames[indices], metadata


def frames_from_images(video: Any) -> np.ndarray:
    """Stacks frame input (array, tensor, PIL image or a list of them) into a `(T, H, W, 3)` uint8 RGB array."""
    if isinstance(video, (np.ndarray, torch.Tensor)):
        if video.ndim == 3:
            video = video[None]  # one (H, W, C) image
        return to_rgb_frames(video)
    if _is_pil_image(video):
        video = [video]
    if isinstance(video, Sequence) and len(video) > 0:
        images = [image_to_rgb_array(image) for image in video]
        if len({image.shape for image in images}) != 1:
            raise VideoDecodeError(
                f"Unsupported video {describe_source(video)}: frames of different sizes {sorted({i.shape for i in images})}"
            )
        return np.stack(images)
    raise VideoDecodeError(
        f"Unsupported video input {describe_source(video)}: expected a path, bytes, a binary file object, a (T, H, W, C)"
        " uint8 array or tensor, or a non-empty list of PIL images or (H, W, C) arrays"
    )


def _is_pil_image(obj: Any) -> bool:
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "convert")


def image_to_rgb_array(image: Any) -> np.ndarray:
    """
    One image as an `(H, W, 3)` uint8 RGB array: PIL images in any mode are converted with `convert("RGB")`
    (alpha dropped); arrays and tensors must be uint8 `(H, W)` or `(H, W, C)` with C in 1..4.
    """
    if _is_pil_image(image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, (np.ndarray, torch.Tensor)) and image.ndim in (2, 3):
        return to_rgb_frames(image[None] if image.ndim == 3 else image[None, ..., None])[0]
    raise VideoDecodeError(
        f"Unsupported image {describe_source(image)}: expected a PIL image or an (H, W, C) uint8 array"
    )


# ----------------------------------------------------------------------------------------------------------------
# VideoMamba pixel pipeline
# ----------------------------------------------------------------------------------------------------------------


def _linear_taps(src_size: int, dst_size: int, clamp_weights: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    OpenCV's source offsets and fixed-point weights for one axis of an INTER_LINEAR resize (half-pixel centres,
    replicated borders). Outside the image OpenCV moves the horizontal taps onto the border pixel with weights
    (1, 0) (`clamp_weights`), but keeps the vertical weights and only clamps the row numbers.

    Returns:
        `(first, second, weights)`: the two source positions per output position, shapes `(dst_size,)`, and their
        weights, shape `(dst_size, 2)`, int64, summing to 2**11.
    """
    scale = 1.0 / (dst_size / src_size)  # OpenCV's scale_x = 1 / inv_scale_x, in double
    position = ((np.arange(dst_size) + 0.5) * scale - 0.5).astype(np.float32)  # then cast to float
    first = np.floor(position).astype(np.int64)
    fraction = position - first.astype(np.float32)
    if clamp_weights:
        low, high = first < 0, first >= src_size - 1
        fraction[low], first[low] = 0, 0
        fraction[high], first[high] = 0, src_size - 1
    # saturate_cast<short>(float) rounds half to even, as numpy's rint does
    upper = np.rint(fraction * np.float32(INTER_RESIZE_COEF_SCALE)).astype(np.int64)
    lower = np.rint((np.float32(1) - fraction) * np.float32(INTER_RESIZE_COEF_SCALE)).astype(np.int64)
    second = np.clip(first + 1, 0, src_size - 1)
    return np.clip(first, 0, src_size - 1), second, np.stack([lower, upper], axis=1)


def resize_bilinear_uint8(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """
    `cv2.resize(image, (width, height))` (INTER_LINEAR) for uint8 `(H, W, C)` images, bit for bit, in numpy.

    OpenCV resizes 8-bit images in fixed point: per-axis weights `round(w * 2**11)`, a horizontal pass into int32,
    then a vertical pass evaluated as `((b0 * (r0 >> 4)) >> 16) + ((b1 * (r1 >> 4)) >> 16) + 2) >> 2` (the form its
    SIMD kernel uses). An exact 2x downscale on both axes is an INTER_AREA 2x2 mean in OpenCV, reproduced as well.
    Used when OpenCV is not installed; tests check it against `cv2.resize`.

    Returns:
        `np.ndarray` of shape `(height, width, C)`, dtype uint8.
    """
    src_height, src_width = image.shape[:2]
    if src_height == 2 * height and src_width == 2 * width:
        blocks = image.reshape(height, 2, width, 2, -1).astype(np.int32).sum(axis=(1, 3))
        return ((blocks + 2) >> 2).astype(np.uint8)

    x_first, x_second, x_weights = _linear_taps(src_width, width, clamp_weights=True)
    y_first, y_second, y_weights = _linear_taps(src_height, height, clamp_weights=False)
    rows = np.unique(np.concatenate([y_first, y_second]))
    pixels = image[rows].astype(np.int64)
    horizontal = np.zeros((src_height, width, image.shape[2]), dtype=np.int64)
    horizontal[rows] = (
        pixels[:, x_first] * x_weights[None, :, 0, None] + pixels[:, x_second] * x_weights[None, :, 1, None]
    )
    b0 = y_weights[:, 0, None, None]
    b1 = y_weights[:, 1, None, None]
    out = (((b0 * (horizontal[y_first] >> 4)) >> 16) + ((b1 * (horizontal[y_second] >> 4)) >> 16) + 2) >> 2
    return np.clip(out, 0, 255).astype(np.uint8)


def _resize(frame: np.ndarray, size: int) -> np.ndarray:
    try:
        import cv2
    except ImportError:
        return resize_bilinear_uint8(frame, size, size)
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR)


def videomamba_pixel_values(
    frames: np.ndarray,
    size: int = 224,
    image_mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
    image_std: Sequence[float] = IMAGENET_DEFAULT_STD,
) -> np.ndarray:
    """
    The VideoMamba preprocessing of the original (`videomamba/utils.py`): squash-resize every frame to
    `size x size` with OpenCV bilinear on uint8 (aspect ratio not kept), then `(x / 255 - mean) / std` in float64,
    channels first, RGB.

    Args:
        frames (`np.ndarray` of shape `(T, H, W, 3)`, uint8): RGB frames.

    Returns:
        `np.ndarray` of shape `(T, 3, size, size)`, dtype float64 (the caller chooses the output precision).
    """
    mean = np.asarray(image_mean, dtype=np.float64)
    std = np.asarray(image_std, dtype=np.float64)
    resized = np.stack([_resize(frame, size) for frame in frames])
    normalized = (resized / 255.0 - mean) / std
    return normalized.transpose(0, 3, 1, 2)
