"""mobilevideogpt: Mobile-VideoGPT as a Hugging Face transformers model, processor, demo and Hub tools."""

from .modeling import MobileVideoGPTConfig, MobileVideoGPTForConditionalGeneration, MobileVideoGPTModel

__all__ = ["MobileVideoGPTConfig", "MobileVideoGPTForConditionalGeneration", "MobileVideoGPTModel"]
