"""Mobile-VideoGPT processor: tokenizer + CLIP image processor + video decoding/sampling/VideoMamba preprocessing."""

from .processing_mobilevideogpt import CHAT_TEMPLATE, MobileVideoGPTProcessor, default_image_processor
from .video_processing_mobilevideogpt import (
    VideoDecodeError,
    available_backends,
    load_frames,
    read_video,
    resize_bilinear_uint8,
    sample_frame_indices,
    videomamba_pixel_values,
)


__all__ = [
    "CHAT_TEMPLATE",
    "MobileVideoGPTProcessor",
    "VideoDecodeError",
    "available_backends",
    "default_image_processor",
    "load_frames",
    "read_video",
    "resize_bilinear_uint8",
    "sample_frame_indices",
    "videomamba_pixel_values",
]
