"""int8 weights for the language model on CPU (PyTorch dynamic quantization).

    from mobilevideogpt.quantize import quantize_int8
    model = quantize_int8(model)          # in place; CLIP, VideoMamba, frame scoring and both ET-Proj stay fp32

Every `nn.Linear` of the Qwen2 decoder and the LM head becomes `torch.ao.nn.quantized.dynamic.Linear`: weights int8
per output channel, activations quantized per call (fbgemm / x86 kernels). Decoding reads every LM weight once per
token, so a quarter of the bytes is what makes it faster; the prompt's prefill also runs on int8 matmuls.

The LM head is tied to the input embeddings in the published models. Quantizing it gives the head its own int8
copy of that matrix while `embed_tokens` (a lookup of a few rows per step, not a matmul) stays fp32; the tie is
recorded as broken in the config so that nothing (`tie_weights`, saving) tries to tie the two again. A quantized
model is for inference only: it cannot be saved with `save_pretrained` or trained.
"""

import torch
from torch import nn

__all__ = ["quantize_int8", "int8_linear_count"]


def quantize_int8(model, include_lm_head: bool = True):
    """Quantize the LM's linear layers (and the LM head) of a `MobileVideoGPTForConditionalGeneration` to int8.

    Args:
        model: the fp32 model (CPU). Modified in place and returned.
        include_lm_head: also quantize `lm_head` (151,936 x H, the largest single matrix read per token).
    Returns:
        the same model, in eval mode.
    """
    if next(model.parameters()).device.type != "cpu":
        raise ValueError("dynamic int8 quantization runs on CPU; move the model to CPU first")
    if "fbgemm" in torch.backends.quantized.supported_engines and torch.backends.quantized.engine not in ("x86", "fbgemm"):
        torch.backends.quantized.engine = "x86" if "x86" in torch.backends.quantized.supported_engines else "fbgemm"
    model.eval()
    model.float()
    # Only nn.Linear is swapped (a name-keyed spec would also catch embed_tokens); the head is swapped through a
    # holder because quantize_dynamic replaces children, never the module it is given.
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig  # int8 weights per output channel
    torch.ao.quantization.quantize_dynamic(model.model.language_model, {nn.Linear: qconfig}, inplace=True)
    if include_lm_head:
        # The head gets its own int8 weight; the fp32 embedding table stays for the lookup. Record the untying so
        # that tie_weights() (e.g. from resize_token_embeddings) does not try to tie the quantized head again.
        for config in (model.config, getattr(model.config, "text_config", None)):
            if config is not None and hasattr(config, "tie_word_embeddings"):
                config.tie_word_embeddings = False
        if isinstance(getattr(model, "_tied_weights_keys", None), dict):
            model._tied_weights_keys = {}
        elif getattr(model, "_tied_weights_keys", None):
            model._tied_weights_keys = []
        holder = nn.ModuleDict({"head": model.lm_head})
        torch.ao.quantization.quantize_dynamic(holder, {nn.Linear: qconfig}, inplace=True)
        model.lm_head = holder["head"]
    return model


def int8_linear_count(model) -> int:
    """How many dynamically quantized linear layers `model` holds."""
    quantized = torch.ao.nn.quantized.dynamic.Linear
    return sum(isinstance(module, quantized) for module in model.modules())

