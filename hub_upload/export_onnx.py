"""`mvgpt export-onnx`: export a Mobile-VideoGPT folder to ONNX through Optimum's exporter (`main_export` with custom
OnnxConfigs and submodels).

The layout is the one ONNX vision-language releases use (transformers.js convention), three graphs:

| file | inputs | outputs |
|---|---|---|
| `vision_encoder.onnx` | `pixel_values_videos`, `pixel_values_context` (batch, 16, 3, 224, 224) | `visual_tokens` (batch, 2402, H), `frame_indices` (batch, 8), `frame_scores` (batch, 16) |
| `embed_tokens.onnx` | `input_ids` (batch, seq) | `inputs_embeds` (batch, seq, H) |
| `decoder_model_merged.onnx` | `inputs_embeds` (batch, seq, H), `attention_mask` (batch, past + seq), `position_ids` (batch, seq), `past_key_values.{i}.key/value` (batch, kv_heads, past, head_dim) | `logits` (batch, seq, vocab), `present.{i}.key/value` |

`vision_encoder.onnx` holds CLIP, frame scoring (its top-K is a TopK node computed from the scores, not the
trace-time indices), VideoMamba (its selective scan is one ONNX `Loop` per direction and layer, see
`selective_scan_exportable`) and both ET-Proj. The decoder takes an empty past (length 0) on the first step,
so one graph serves prompt and decoding. The config, generation config, processor, tokenizer and their code are
copied beside the graphs; `mobilevideogpt.onnx_runtime.MobileVideoGPTOnnxRunner` runs the folder with onnxruntime.

Optimum's ONNX exporter (optimum-onnx) requires transformers < 4.58: this module runs in the `[onnx]`
environment (`make compat-env`), not in the package's transformers 5.x one.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import torch
from optimum.exporters.onnx import main_export
from optimum.exporters.onnx.base import OnnxConfig
from optimum.exporters.onnx.model_configs import Qwen2OnnxConfig
from optimum.utils import DummyInputGenerator, DummyTextInputGenerator, NormalizedConfig, NormalizedTextConfig
from torch import nn
from transformers import AutoConfig

# The graph names of the transformers.js layout, in export order.
VISION_ENCODER, EMBED_TOKENS, DECODER = "vision_encoder", "embed_tokens", "decoder_model_merged"
ONNX_OPSET = 17
# Suffix of the graphs written by `--quantize int8` (transformers.js names its 8-bit files so).
QUANTIZED_SUFFIX = "_quantized"
# Files of the model folder not copied beside the graphs: the PyTorch weights and modeling code.
_PYTORCH_ONLY = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.pth", "modeling_*.py")


# ---------------------------------------------------------------------------------------------------------------
# Submodels: what each graph computes
# ---------------------------------------------------------------------------------------------------------------


class MobileVideoGPTVisionEncoderForExport(nn.Module):
    """Both encoders, frame scoring and both projectors: the `get_video_features` of the model."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.model
        self.config = model.config

    def forward(self, pixel_values_videos: torch.Tensor, pixel_values_context: torch.Tensor) -> dict[str, torch.Tensor]:
        """(batch, 16, 3, 224, 224) x 2 -> visual_tokens (batch, 2402, H), frame_indices (batch, 8) int64,
        frame_scores (batch, 16)."""
        features = self.model.get_video_features(pixel_values_videos, pixel_values_context)
        return {
            "visual_tokens": features.visual_tokens,
            "frame_indices": features.frame_indices,
            "frame_scores": features.frame_scores,
        }


class MobileVideoGPTEmbedTokensForExport(nn.Module):
    """The LM's token embedding: input_ids (batch, seq) -> inputs_embeds (batch, seq, H)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.embed_tokens = model.get_input_embeddings()
        self.config = model.config

    def forward(self, input_ids: torch.LongTensor) -> dict[str, torch.Tensor]:
        return {"inputs_embeds": self.embed_tokens(input_ids)}


class MobileVideoGPTDecoderForExport(nn.Module):
    """Qwen2 + LM head on embeddings, with the KV cache (Optimum turns the legacy tuples into a DynamicCache)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.LongTensor,
        past_key_values=None,
    ) -> dict[str, object]:
        """inputs_embeds (batch, seq, H), attention_mask (batch, past + seq), position_ids (batch, seq) ->
        logits (batch, seq, vocab) and the cache extended by seq."""
        outputs = self.model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=True,
        )
        return {"logits": outputs.logits, "past_key_values": outputs.past_key_values}


def get_submodels(model: nn.Module) -> dict[str, nn.Module]:
    """`fn_get_submodels` for Optimum: the three graphs of the layout."""
    return {
        VISION_ENCODER: MobileVideoGPTVisionEncoderForExport(model),
        EMBED_TOKENS: MobileVideoGPTEmbedTokensForExport(model),
        DECODER: MobileVideoGPTDecoderForExport(model),
    }


# ---------------------------------------------------------------------------------------------------------------
# ONNX configs: inputs, outputs, dynamic axes and dummy inputs of each graph
# ---------------------------------------------------------------------------------------------------------------


class DummyVideoInputGenerator(DummyInputGenerator):
    """Random frames (batch, num_frames, 3, image_size, image_size) for both pixel streams."""

    SUPPORTED_INPUT_NAMES = ("pixel_values_videos", "pixel_values_context")

    def __init__(self, task: str, normalized_config: NormalizedConfig, batch_size: int = 2, **kwargs):
        self.task = task
        self.batch_size = batch_size
        config = normalized_config.config
        self.num_frames = config.num_frames
        self.image_size = config.vision_config.image_size

    def generate(self, input_name: str, framework: str = "pt", int_dtype: str = "int64", float_dtype: str = "fp32"):
        shape = [self.batch_size, self.num_frames, 3, self.image_size, self.image_size]
        return self.random_float_tensor(shape, min_value=-2.0, max_value=2.0, framework=framework, dtype=float_dtype)


class DummyInputsEmbedsGenerator(DummyInputGenerator):
    """Random `inputs_embeds` (batch, sequence_length, hidden_size)."""

    SUPPORTED_INPUT_NAMES = ("inputs_embeds",)

    def __init__(
        self, task: str, normalized_config: NormalizedTextConfig, batch_size: int = 2, sequence_length: int = 16, **kwargs
    ):
        self.task = task
        self.batch_size = batch_size
        self.sequence_length = sequence_length
        self.hidden_size = normalized_config.hidden_size

    def generate(self, input_name: str, framework: str = "pt", int_dtype: str = "int64", float_dtype: str = "fp32"):
        shape = [self.batch_size, self.sequence_length, self.hidden_size]
        return self.random_float_tensor(shape, min_value=-0.1, max_value=0.1, framework=framework, dtype=float_dtype)


class MobileVideoGPTVisionOnnxConfig(OnnxConfig):
    """`vision_encoder.onnx`; built on the full `MobileVideoGPTConfig`. The batch axis is dynamic."""

    NORMALIZED_CONFIG_CLASS = NormalizedConfig
    DUMMY_INPUT_GENERATOR_CLASSES = (DummyVideoInputGenerator,)
    DEFAULT_ONNX_OPSET = ONNX_OPSET
    ATOL_FOR_VALIDATION = 1e-3

    @property
    def inputs(self) -> dict[str, dict[int, str]]:
        return OrderedDict((name, {0: "batch_size"}) for name in DummyVideoInputGenerator.SUPPORTED_INPUT_NAMES)

    @property
    def outputs(self) -> dict[str, dict[int, str]]:
        return OrderedDict((name, {0: "batch_size"}) for name in ("visual_tokens", "frame_indices", "frame_scores"))


class MobileVideoGPTEmbedOnnxConfig(OnnxConfig):
    """`embed_tokens.onnx`; built on the text config. Batch and sequence axes are dynamic."""

    NORMALIZED_CONFIG_CLASS = NormalizedTextConfig
    DUMMY_INPUT_GENERATOR_CLASSES = (DummyTextInputGenerator,)
    DEFAULT_ONNX_OPSET = ONNX_OPSET

    @property
    def inputs(self) -> dict[str, dict[int, str]]:
        return OrderedDict(input_ids={0: "batch_size", 1: "sequence_length"})

    @property
    def outputs(self) -> dict[str, dict[int, str]]:
        return OrderedDict(inputs_embeds={0: "batch_size", 1: "sequence_length"})


class MobileVideoGPTDecoderOnnxConfig(Qwen2OnnxConfig):
    """`decoder_model_merged.onnx`: Optimum's Qwen2 decoder-with-past config, fed `inputs_embeds` instead of
    `input_ids`; built on the text config. Batch, sequence and past axes are dynamic."""

    DUMMY_INPUT_GENERATOR_CLASSES = (DummyInputsEmbedsGenerator, *Qwen2OnnxConfig.DUMMY_INPUT_GENERATOR_CLASSES)
    DEFAULT_ONNX_OPSET = ONNX_OPSET
    # Optimum's padding of the dummy mask to past + sequence reads `input_ids`; `generate_dummy_inputs` pads it.
    PAD_ATTENTION_MASK_TO_PAST = False

    @property
    def inputs(self) -> dict[str, dict[int, str]]:
        inputs = super().inputs
        inputs.pop("input_ids")
        return OrderedDict([("inputs_embeds", {0: "batch_size", 1: "sequence_length"}), *inputs.items()])

    def generate_dummy_inputs(self, framework: str = "pt", **kwargs) -> dict:
        dummy_inputs = super().generate_dummy_inputs(framework=framework, **kwargs)
        length = dummy_inputs["past_key_values"][0][0].shape[-2] + dummy_inputs["inputs_embeds"].shape[1]
        dummy_inputs["attention_mask"] = DummyInputGenerator.pad_input_on_dim(
            dummy_inputs["attention_mask"], desired_length=length, dim=1
        )
        return dummy_inputs


def onnx_configs(config, float_dtype: str = "fp32") -> dict[str, OnnxConfig]:
    """`custom_onnx_configs` for Optimum, keyed like `get_submodels`. `config`: a `MobileVideoGPTConfig`."""
    return {
        VISION_ENCODER: MobileVideoGPTVisionOnnxConfig(config, task="feature-extraction", float_dtype=float_dtype),
        EMBED_TOKENS: MobileVideoGPTEmbedOnnxConfig(config.text_config, task="feature-extraction", float_dtype=float_dtype),
        DECODER: MobileVideoGPTDecoderOnnxConfig(
            config.text_config, task="text-generation", float_dtype=float_dtype, use_past=True, use_past_in_inputs=True
        ),
    }


# ---------------------------------------------------------------------------------------------------------------
# Export, quantization, CLI
# ---------------------------------------------------------------------------------------------------------------


def export_onnx(
    model_dir: str | Path, output: str | Path, dtype: str = "fp32", quantize: str | None = None, validate: bool = True
) -> Path:
    """Export the model folder `model_dir` to `output` in the layout of the module docstring.

    Args:
        model_dir: a folder written by this package (`mvgpt convert`, `save_pretrained`) or a Hub id.
        output: folder to write (created).
        dtype: `"fp32"` or `"fp16"` (the precision of the exported LM and projectors; the encoders stay fp32, as in
            PyTorch).
        quantize: `"int8"` also writes `{graph}_quantized.onnx`: onnxruntime dynamic quantization (int8 weights of
            MatMul and Gather, activations quantized at run time).
        validate: let Optimum compare each graph with PyTorch on random inputs after the export.
    Returns:
        `output` as a `Path`.
    """
    if dtype not in ("fp32", "fp16"):
        raise ValueError(f"dtype must be 'fp32' or 'fp16', got {dtype!r}")
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    output = Path(output)
    model_dir = local_model_dir(model_dir)
    with tempfile.TemporaryDirectory(prefix="mvgpt-export-") as staging:
        config = AutoConfig.from_pretrained(stage_with_package_code(model_dir, Path(staging)), trust_remote_code=True)
        main_export(
            staging,
            output,
            task="image-text-to-text",
            dtype=dtype,
            trust_remote_code=True,
            library_name="transformers",
            custom_onnx_configs=onnx_configs(config, float_dtype=dtype),
            fn_get_submodels=get_submodels,
            no_post_process=True,
            do_validation=validate,
        )
    copy_processor_files(model_dir, output)
    if quantize == "int8":
        quantize_int8(output)
    return output


def local_model_dir(model: str | Path) -> Path:
    """`model` itself when it is a folder, else the local snapshot of that Hub id (downloaded if needed)."""
    if Path(model).is_dir():
        return Path(model)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(model)))


def stage_with_package_code(model_dir: Path, staging: Path) -> Path:
    """Fill `staging` with links to the files of `model_dir`, except its modeling and configuration code, which are
    this package's: the export needs the ONNX paths of the current code (the scripted scan loop, the TopK frame
    selection), which the code saved in an older folder may lack. Returns `staging`."""
    from .. import modeling

    package_code = {path.name: path for path in Path(modeling.__file__).parent.glob("*_mobilevideogpt.py")}
    for path in model_dir.iterdir():
        (staging / path.name).symlink_to(package_code.get(path.name, path.resolve()))
    return staging


def copy_processor_files(model_dir: Path, output: Path) -> None:
    """Copy the config, generation config, processor, tokenizer and their remote code beside the graphs."""
    for path in sorted(model_dir.iterdir()):
        if path.is_file() and not any(path.match(pattern) for pattern in _PYTORCH_ONLY):
            shutil.copy2(path, output / path.name)


def quantize_int8(folder: Path) -> list[Path]:
    """Write `{graph}_quantized.onnx` beside each graph: onnxruntime dynamic int8 quantization of the MatMul
    weights (and of the embedding table, a Gather). Returns the written files."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    written = []
    for name in (VISION_ENCODER, EMBED_TOKENS, DECODER):
        target = folder / f"{name}{QUANTIZED_SUFFIX}.onnx"
        quantize_dynamic(
            folder / f"{name}.onnx",
            target,
            op_types_to_quantize=["MatMul", "Gather"],
            weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": 1},  # float32, for tensors whose type shape inference misses
        )
        written.append(target)
    return written


def run_export_onnx(args: argparse.Namespace) -> int:
    """Run `mvgpt export-onnx` from parsed arguments; prints the files written."""
    start = time.perf_counter()
    output = export_onnx(args.model, args.output, dtype=args.dtype, quantize=args.quantize, validate=not args.no_validate)
    print(f"Exported {args.model} to {output} in {time.perf_counter() - start:.1f} s:")
    for path in sorted(output.glob("*.onnx*")):
        print(f"  {path.name}  {path.stat().st_size / 2**20:.1f} MiB")
    return 0
