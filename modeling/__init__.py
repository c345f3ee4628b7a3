"""Mobile-VideoGPT model: configuration and modeling (served flat on the Hub as remote code)."""

from .configuration_mobilevideogpt import MobileVideoGPTConfig, VideoMambaConfig
from .modeling_mobilevideogpt import (
    ETProjector,
    FrameScorer,
    MobileVideoGPTForConditionalGeneration,
    MobileVideoGPTModel,
    VideoMambaEncoder,
)

__all__ = [
    "ETProjector",
    "FrameScorer",
    "MobileVideoGPTConfig",
    "MobileVideoGPTForConditionalGeneration",
    "MobileVideoGPTModel",
    "VideoMambaConfig",
    "VideoMambaEncoder",
]
