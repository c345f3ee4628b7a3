"""The original three-stage recipe (spec §10) on transformers' Trainer and PEFT.

| stage | trains | frozen | default lr | batch x accumulation |
|---|---|---|---|---|
| 1 video-projector pre-training | video ET-Proj | encoders, image ET-Proj, LM | 1e-3 | 16 x 2 |
| 2 image-projector pre-training | image ET-Proj | encoders, video ET-Proj, LM | 1e-3 | 8 x 2 |
| 3 instruction tuning | LoRA on every LM linear layer (r 128, alpha 256, dropout 0.05) + both ET-Proj | encoders | 2e-4 (LoRA), 2e-5 (ET-Proj) | 8 x 2 |

All stages: 2 epochs, cosine schedule, 3 % warm-up, no weight decay, model_max_length 4096, gradient checkpointing,
bf16 on GPU (fp32 on CPU). Each stage reads a model folder and writes a complete Hub-ready folder (weights, remote
code, processor, card, `loss.png`); stage 3 also writes its PEFT adapter (LoRA + both projectors) to `adapter/`,
which `mvgpt merge-lora` merges into any copy of its base.

Departure from the original: stage 1 here trains the video projector on the videos of the data file (the original
fed images through VideoMamba in a one-frame image mode, which this model does not have); image records are not
accepted in stage 1. The stages are independent, as in the original (spec Q-34).

Multi-process: `accelerate launch --config_file training/accelerate/ddp.yaml -m mobilevideogpt.cli train ...`
(also `fsdp.yaml`, `deepspeed_zero2.yaml`, `deepspeed_zero3.yaml`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel, AutoProcessor, Trainer, TrainingArguments

from ..hub_upload.publish import write_merged
from .data import DataCollator, DataError, SupervisedDataset

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Stage:
    name: str
    projectors: tuple[str, ...]  # modules trained in full
    lora: bool
    learning_rate: float
    batch_size: int
    gradient_accumulation_steps: int
    projector_learning_rate: float | None = None  # stage 3: the projectors' own learning rate


STAGES = {
    1: Stage("video-projector pre-training", ("video_projector",), False, 1e-3, 16, 2),
    2: Stage("image-projector pre-training", ("image_projector",), False, 1e-3, 8, 2),
    3: Stage("instruction tuning", ("image_projector", "video_projector"), True, 2e-4, 8, 2, 2e-5),
}


@dataclass
class TrainConfig:
    """Everything `train` takes besides the stage, model, data and output; defaults are the original's."""

    epochs: float = 2.0
    learning_rate: float | None = None  # default: the stage's
    projector_learning_rate: float | None = None  # stage 3; default: the stage's
    batch_size: int | None = None  # per device; default: the stage's
    gradient_accumulation_steps: int | None = None
    max_steps: int = -1
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    lr_scheduler_type: str = "cosine"
    max_length: int = 4096
    gradient_checkpointing: bool = True
    lora_r: int = 128
    lora_alpha: int = 256
    lora_dropout: float = 0.05
    seed: int = 0
    dataloader_num_workers: int = 4
    logging_steps: int = 1
    media_root: str | None = None
    bf16: bool | None = None  # default: on when CUDA is available
    extra_training_args: dict[str, Any] = field(default_factory=dict)  # any other TrainingArguments field

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Reads a JSON or YAML mapping of the fields above; `overrides` (those not None) win."""
        path = Path(path)
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml  # accelerate depends on PyYAML

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown training settings {sorted(unknown)}")
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


class ProjectorLearningRateTrainer(Trainer):
    """Trainer whose optimizer gives parameters under a projector their own learning rate (stage 3)."""

    def __init__(self, *args, projector_learning_rate: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.projector_learning_rate = projector_learning_rate

    def create_optimizer(self, *args, **kwargs):
        if self.optimizer is not None or self.projector_learning_rate is None:
            return super().create_optimizer(*args, **kwargs)
        trainable = [(name, p) for name, p in self.model.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for name, p in trainable if "projector" not in name]},
            {"params": [p for name, p in trainable if "projector" in name], "lr": self.projector_learning_rate},
        ]
        optimizer_class, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, self.model)
        for group in groups:
            group["weight_decay"] = self.args.weight_decay
        self.optimizer = optimizer_class([g for g in groups if g["params"]], **optimizer_kwargs)
        return self.optimizer


def freeze_for_stage(model: torch.nn.Module, stage: Stage) -> None:
    """Freezes everything, then unfreezes the stage's projectors (LoRA adds its own trainable weights)."""
    model.requires_grad_(False)
    for name in stage.projectors:
        getattr(model.model, name).requires_grad_(True)


def add_lora(model: torch.nn.Module, config: TrainConfig, stage: Stage):
    """Wraps `model` with LoRA on the LM's linear layers; the stage's projectors are trained in full and saved in the
    adapter (PEFT `modules_to_save`)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as error:
        raise ImportError("stage 3 needs PEFT: pip install 'mobilevideogpt[train]'") from error
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        bias="none",
        target_modules=rf".*language_model\..*\.({'|'.join(LORA_TARGETS)})",
        modules_to_save=list(stage.projectors),
    )
    return get_peft_model(model, lora)


def train(
    stage_number: int,
    model_path: str | Path,
    data_path: str | Path,
    output_dir: str | Path,
    config: TrainConfig | None = None,
) -> Path:
    """
    Runs one stage and writes a Hub-ready model folder to `output_dir`; returns it.

    Args:
        stage_number: 1, 2 or 3 (see the module docstring).
        model_path: model folder or Hub id to start from (a converted Mobile-VideoGPT, or the previous stage's output).
        data_path: LLaVA-style JSON (see `training.data`).
        output_dir: new folder; checkpoints go to `output_dir/checkpoints`, stage 3's adapter to `output_dir/adapter`.
    """
    if stage_number not in STAGES:
        raise ValueError(f"stage must be one of {sorted(STAGES)}, got {stage_number}")
    stage, config = STAGES[stage_number], config or TrainConfig()
    output_dir = Path(output_dir)
    processor = AutoProcessor.from_pretrained(model_path, trust_remote_code=True)
    dataset = SupervisedDataset(data_path, processor, config.media_root, config.max_length)
    if stage_number == 1 and any("image" in record for record in dataset.records):
        raise DataError(f"{data_path}: stage 1 trains the video projector and takes video records only")

    torch.manual_seed(config.seed)
    use_cuda = torch.cuda.is_available()
    bf16 = use_cuda if config.bf16 is None else config.bf16
    model = AutoModel.from_pretrained(model_path, trust_remote_code=True, dtype=torch.float32)
    freeze_for_stage(model, stage)
    if stage.lora:
        model = add_lora(model, config, stage)

    args = TrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate or stage.learning_rate,
        per_device_train_batch_size=config.batch_size or stage.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps or stage.gradient_accumulation_steps,
        **_renamed_arguments(config),
        weight_decay=config.weight_decay,
        lr_scheduler_type=config.lr_scheduler_type,
        bf16=bf16,
        tf32=use_cuda and torch.cuda.get_device_capability()[0] >= 8,
        logging_steps=config.logging_steps,
        save_strategy="epoch",
        save_total_limit=1,
        dataloader_num_workers=config.dataloader_num_workers,
        remove_unused_columns=False,
        report_to=[],
        seed=config.seed,
        **config.extra_training_args,
    )
    trainer = ProjectorLearningRateTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=DataCollator(processor.tokenizer.pad_token_id),
        projector_learning_rate=(config.projector_learning_rate or stage.projector_learning_rate) if stage.lora else None,
    )
    trainer.train()

    # save_model runs on every process: FSDP and DeepSpeed ZeRO-3 gather the sharded weights there
    trainer.save_model(str(output_dir / "adapter" if stage.lora else output_dir))
    if trainer.is_world_process_zero():
        if stage.lora:
            write_merged(output_dir / "adapter", output_dir, base=str(model_path))
        else:
            processor.save_pretrained(output_dir)
        _write_card(output_dir, stage_number, stage, model_path, data_path, trainer)
    trainer.accelerator.wait_for_everyone()
    return output_dir


def _renamed_arguments(config: TrainConfig) -> dict[str, Any]:
    """TrainingArguments whose names differ between versions: transformers 5 takes the warm-up ratio as a float
    `warmup_steps` and calls gradient checkpointing activation checkpointing; 4.x has `warmup_ratio` and
    `gradient_checkpointing`."""
    fields = TrainingArguments.__dataclass_fields__
    arguments: dict[str, Any] = {"warmup_ratio" if "warmup_ratio" in fields else "warmup_steps": config.warmup_ratio}
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
    if config.gradient_checkpointing:
        arguments.update({checkpointing: True, f"{checkpointing}_kwargs": {"use_reentrant": False}})
    return arguments


def _write_card(output_dir: Path, number: int, stage: Stage, model_path, data_path, trainer) -> None:
    history = [entry for entry in trainer.state.log_history if "loss" in entry]
    (output_dir / "training_log.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    plot_loss(history, output_dir / "loss.png", f"stage {number}: {stage.name}")
    final_loss = history[-1]["loss"] if history else math.nan
    (output_dir / "README.md").write_text(
        f"---\nbase_model: {model_path}\npipeline_tag: video-text-to-text\nlibrary_name: transformers\ntags:\n"
        f"- mobilevideogpt\n- custom_code\n---\n\n# Mobile-VideoGPT, stage {number} ({stage.name})\n\n"
        f"Trained from `{model_path}` on `{Path(data_path).name}` with `mvgpt train --stage {number}`: "
        f"{trainer.state.global_step} steps, final training loss {final_loss:.4f} (curve in `loss.png`).\n\n"
        "```python\nfrom transformers import AutoModel, AutoProcessor\n\n"
        'model = AutoModel.from_pretrained("<this folder>", trust_remote_code=True)\n'
        'processor = AutoProcessor.from_pretrained("<this folder>", trust_remote_code=True)\n```\n'
    )


def plot_loss(history: list[dict[str, Any]], path: Path, title: str) -> None:
    """Training loss against step, as a PNG (needs matplotlib; skipped with a message without it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib is not installed: no {path.name} (pip install 'mobilevideogpt[train]')")
        return
    figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
    axes.plot([entry["step"] for entry in history], [entry["loss"] for entry in history], linewidth=1.2)
    axes.set(xlabel="step", ylabel="training loss", title=title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
