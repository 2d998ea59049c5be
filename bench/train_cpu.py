"""CPU training throughput: MelancIA's packed trainer step against a textbook padded loop.

Both sides fine-tune the same base (the packaged SmolLM2-135M by default) with the same LoRA
adapters (r=16, all-linear), the same AdamW, on the same examples of the bundled training split,
in this one process. The textbook loop is what most tutorials write: batches of ``--batch-size``
examples right-padded to the longest, ``model(input_ids, attention_mask, labels)`` computing logits
for every position. The MelancIA step packs examples padding-free up to ``--tokens-per-batch``,
attends inside each example only and projects to the vocabulary only the positions that have a
target. Throughput counts real (non-padding) tokens per second.

    .venv/bin/python bench/train_cpu.py            # prints both rates and the ratio (target >= 1.5x)
"""

from __future__ import annotations

import argparse
import copy
import random
import tempfile
import time
from pathlib import Path

import torch

from melancia.data.config import DataConfig
from melancia.models.loading import PACKAGED_MODEL
from melancia.models.loading import load_tokenizer
from melancia.settings import get_settings
from melancia.training.batches import EncodedSplit, encode_split, make_batch, plan_steps
from melancia.training.collate import pad_batch
from melancia.training.config import TrainConfig
from melancia.training.loss import PackedLMLoss
from melancia.training.model import add_adapters, choose_placement, load_base


def training_split(tokenizer) -> EncodedSplit:
    """The bundled training split (built into a temporary folder when MELANCIA_HOME has none)."""
    path = get_settings().paths.datasets / "train.jsonl"
    if not path.exists():
        from melancia.data.pipeline import build_datasets

        out = Path(tempfile.mkdtemp()) / "datasets"
        build_datasets(DataConfig(out_dir=out), tokenizer=tokenizer)
        path = out / "train.jsonl"
    return encode_split(path, tokenizer, 1024)


def fresh_adapter_model(base, config: TrainConfig):
    torch.manual_seed(0)
    model = add_adapters(copy.deepcopy(base), config)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    return model, optimizer


def textbook_rate(base, config, split, tokenizer, batch_size: int, steps: int) -> tuple[float, int]:
    model, optimizer = fresh_adapter_model(base, config)
    model.set_attn_implementation("sdpa")
    order = list(range(len(split.examples)))
    random.Random(0).shuffle(order)
    real, seconds = 0, 0.0
    for step in range(steps + 1):  # the first step warms up and is not timed
        examples = [split.examples[i] for i in order[step * batch_size:(step + 1) * batch_size]]
        batch = pad_batch(examples, tokenizer.pad_token_id)
        started = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:
            seconds += time.perf_counter() - started
            real += int(batch["attention_mask"].sum())
    return real / seconds, real


def packed_rate(base, config, split, tokens_per_batch: int, token_target: int) -> tuple[float, int]:
    model, optimizer = fresh_adapter_model(base, config)
    loss_module = PackedLMLoss(model)
    plan = plan_steps(split, tokens_per_batch=tokens_per_batch, accumulation=1, epochs=1, max_steps=None, seed=0)
    real, seconds = 0, 0.0
    for index, step in enumerate(plan):
        batch = make_batch([split.examples[i] for i in step.micro_batches[0]])
        started = time.perf_counter()
        (loss_module.batch_loss(batch) / step.trainable).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if index:
            seconds += time.perf_counter() - started
            real += batch.tokens
        if real >= token_target:
            break
    return real / seconds, real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=PACKAGED_MODEL)
    parser.add_argument("--batch-size", type=int, default=4, help="textbook loop: examples per padded batch")
    parser.add_argument("--steps", type=int, default=6, help="textbook loop: timed steps")
    parser.add_argument("--tokens-per-batch", type=int, default=2048, help="packed step: token budget")
    args = parser.parse_args()

    torch.manual_seed(0)
    config = TrainConfig(base_model=args.model)
    tokenizer = load_tokenizer(args.model)
    split = training_split(tokenizer)
    base = load_base(args.model, choose_placement(config))
    print(f"model {args.model}, {torch.get_num_threads()} threads, {len(split.examples)} examples, "
          f"LoRA r={config.lora.r} {config.lora.target_modules}", flush=True)
    naive, tokens = textbook_rate(base, config, split, tokenizer, args.batch_size, args.steps)
    print(f"textbook padded loop (batch {args.batch_size}): {naive:8.1f} real tokens/s over {tokens} tokens",
          flush=True)
    packed, tokens = packed_rate(base, config, split, args.tokens_per_batch, token_target=tokens)
    print(f"melancia packed step ({args.tokens_per_batch} tokens): {packed:8.1f} real tokens/s over {tokens} tokens")
    print(f"ratio: {packed / naive:.2f}x (target >= 1.5x)")


if __name__ == "__main__":
    main()
