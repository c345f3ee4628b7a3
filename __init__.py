"""mobilevideogpt: Mobile-VideoGPT as a Hugging Face transformers model, processor, demo and Hub tools."""

from .modeling import MobileVideoGPTConfig, MobileVideoGPTForConditionalGeneration, MobileVideoGPTModel
from .processing import MobileVideoGPTProcessor, VideoDecodeError

__all__ = [
    "MobileVideoGPTConfig",
    "MobileVideoGPTForConditionalGeneration",
    "MobileVideoGPTModel",
    "MobileVideoGPTProcessor",
    "VideoDecodeError",
]
