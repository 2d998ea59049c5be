"""Load a base model for fine-tuning and put adapters on it: LoRA, DoRA or QLoRA.

Precision follows the device: bfloat16 on CUDA (float16 where bf16 is missing), float32 on CPU.
QLoRA loads the base in 4-bit NF4 with double quantisation through bitsandbytes; it needs CUDA
and the ``qlora`` extra, and says so plainly when either is missing. Merging and export always
reload an unquantised base (see :mod:`melancia.export.merge`).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import torch

from melancia.errors import TrainingSetupError
from melancia.models.loading import _hub_error, model_dir, resolve
from melancia.training.attention import VARLEN
from melancia.training.config import TrainConfig


@dataclass
class Placement:
    """Where and in which precision training runs."""

    device: torch.device
    dtype: torch.dtype

    @property
    def precision(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}[self.dtype]


def choose_placement(config: TrainConfig) -> Placement:
    """CUDA with bf16 when available (or asked for), CPU with float32 otherwise."""
    wants_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    if config.device == "cuda" and not torch.cuda.is_available():
        raise TrainingSetupError("device: cuda was asked for but no CUDA device is visible; use device: auto or cpu")
    if config.method == "qlora" and not wants_cuda:
        raise TrainingSetupError("method: qlora needs a CUDA GPU (bitsandbytes 4-bit kernels); on CPU use "
                                 "method: lora")
    if wants_cuda:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return Placement(torch.device("cuda"), dtype)
    return Placement(torch.device("cpu"), torch.float32)


def load_base(ref: str, placement: Placement, *, quantize_4bit: bool = False) -> Any:
    """The causal LM of ``ref`` in the placement's precision (4-bit NF4 when asked)."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": placement.dtype, "attn_implementation": "sdpa"}
    if quantize_4bit:
        kwargs["quantization_config"] = _nf4_config(placement.dtype)
        kwargs["device_map"] = {"": placement.device.index or 0}
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir(ref), **kwargs)
    except OSError as exc:
        raise _hub_error(resolve(ref), exc) from None
    return model if quantize_4bit else model.to(placement.device)


def _nf4_config(compute_dtype: torch.dtype) -> Any:
    if importlib.util.find_spec("bitsandbytes") is None:
        raise TrainingSetupError("method: qlora needs bitsandbytes: pip install 'melancia[qlora]'")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype)


def add_adapters(model: Any, config: TrainConfig) -> Any:
    """Wrap ``model`` with trainable LoRA/DoRA adapters; every base weight stays frozen."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if config.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    elif config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    targets = config.lora.target_modules
    lora = LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                      target_modules="all-linear" if targets == ["all-linear"] else targets,
                      use_dora=config.lora.use_dora, bias="none", task_type="CAUSAL_LM")
    try:
        model = get_peft_model(model, lora)
    except ValueError as exc:  # e.g. a target module name that the model does not have
        raise TrainingSetupError(f"lora.target_modules: {exc}") from None
    model.set_attn_implementation(VARLEN)
    return model


def trainable_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
