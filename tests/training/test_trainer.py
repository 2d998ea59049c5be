import json

import pytest
import torch

from melancia.training.batches import encode_split, make_batch
from melancia.training.collate import IGNORE
from melancia.training.config import ExportConfig
from melancia.training.loss import PackedLMLoss
from melancia.training.trainer import train
from tests.training.conftest import tiny_train_config


def _grads(model):
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def test_accumulated_loss_is_the_per_token_mean_of_the_whole_step(tiny_tokenizer, tiny_model_dir, tiny_splits):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    from melancia.training.attention import VARLEN

    model.set_attn_implementation(VARLEN)
    loss = PackedLMLoss(model)
    examples = encode_split(tiny_splits / "train.jsonl", tiny_tokenizer, 512).examples[:3]
    one, two = make_batch(examples[:1]), make_batch(examples[1:])
    assert one.trainable != two.trainable  # unequal micro-batches are where per-batch means go wrong
    whole = make_batch(examples)
    (loss.batch_loss(whole) / whole.trainable).backward()
    reference = _grads(model)
    model.zero_grad()
    step_tokens = one.trainable + two.trainable
    for micro in (one, two):
        (loss.batch_loss(micro) / step_tokens).backward()
    assert torch.allclose(_grads(model), reference, rtol=1e-4, atol=1e-7)
    model.zero_grad()
    for micro in (one, two):  # the pitfall: averaging per micro-batch weighs tokens unequally
        (loss.batch_loss(micro) / micro.trainable / 2).backward()
    assert not torch.allclose(_grads(model), reference, rtol=1e-3, atol=1e-6)


def test_packed_loss_matches_the_model_loss_on_each_example(tiny_tokenizer, tiny_model_dir, tiny_splits):
    from transformers import AutoModelForCausalLM

    from melancia.training.attention import VARLEN

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    examples = encode_split(tiny_splits / "train.jsonl", tiny_tokenizer, 512).examples[:4]
    with torch.no_grad():
        separate = sum(model(input_ids=torch.tensor([e.input_ids]), labels=torch.tensor([e.labels])).loss
                       * sum(label != IGNORE for label in e.labels[1:]) for e in examples)
        model.set_attn_implementation(VARLEN)
        packed = PackedLMLoss(model).batch_loss(make_batch(examples))
    assert abs(float(packed - separate)) < 1e-4 * float(separate)


def test_training_lowers_eval_loss_and_exports_everything(tiny_model_dir, tiny_splits, tmp_path):
    from mlflow import MlflowClient

    config = tiny_train_config(tiny_model_dir, tiny_splits, tmp_path / "run")
    result = train(config)
    out = tmp_path / "run"
    assert result.state.step == 8 and result.state.best_eval_loss < result.first_eval_loss - 0.1
    for path in ("adapter/adapter_model.safetensors", "adapter/adapter_config.json", "adapter/tokenizer.json",
                 "adapter/README.md", "merged/model.safetensors", "gguf/tiny.gguf", "gguf/Modelfile",
                 "README.md", "history.json", "best/adapter.pt", "run.json"):
        assert (out / path).exists(), path
    card = (out / "README.md").read_text()
    assert str(tiny_model_dir) in card and f"{result.state.best_eval_loss:.4f}" in card
    assert [h["step"] for h in json.loads((out / "history.json").read_text()) if "eval_loss" in h] == [0, 4, 8]

    client = MlflowClient()
    run = client.get_run(result.state.mlflow_run_id)
    assert run.info.status == "FINISHED" and run.data.params["lora.r"] == "16"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == list(range(1, 9))
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"adapter", "README.md", "history.json"}
    assert result.registered_version == "1"
    again = train(tiny_train_config(tiny_model_dir, tiny_splits, tmp_path / "run2", max_steps=1))
    assert again.registered_version == "2"
    assert client.get_model_version("tiny-assistant", "2").run_id == again.state.mlflow_run_id


def test_merged_model_carries_the_adapter_update(tiny_tokenizer, tiny_model_dir, tiny_splits, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    train(tiny_train_config(tiny_model_dir, tiny_splits, tmp_path / "run", max_steps=2, eval_every=2,
                            export=ExportConfig(gguf=False)))
    ids = torch.tensor([tiny_tokenizer("O ACOS mede quanto")["input_ids"]])
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        base_logits = base(ids).logits
        adapted = PeftModel.from_pretrained(base, tmp_path / "run/adapter")(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "run/merged")(ids).logits
    assert torch.allclose(adapted, merged, atol=1e-4)
    assert not torch.allclose(base_logits, merged, atol=1e-3)


def test_early_stopping_keeps_the_best_adapter(tiny_model_dir, tiny_splits, tmp_path):
    from safetensors.torch import load_file

    config = tiny_train_config(tiny_model_dir, tiny_splits, tmp_path / "run", learning_rate=0.5, max_steps=30,
                               eval_every=2, early_stopping_patience=2, lr_scheduler="constant",
                               export=ExportConfig(merged=False, gguf=False))
    result = train(config)
    assert result.stopped_early and result.state.step < 30
    assert result.state.best_step < result.state.step
    best = torch.load(tmp_path / "run/best/adapter.pt")
    exported = load_file(tmp_path / "run/adapter/adapter_model.safetensors")
    a_weights = sorted(k for k in best if "lora_A" in k)
    assert a_weights and all(torch.equal(best[k], exported[k.replace(".default", "")]) for k in a_weights)


def test_dora_adapters_train(tiny_model_dir, tiny_splits, tmp_path):
    from melancia.training.config import LoraConfig

    config = tiny_train_config(tiny_model_dir, tiny_splits, tmp_path / "run", max_steps=2, eval_every=2,
                               lora=LoraConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"], use_dora=True),
                               export=ExportConfig(merged=False, gguf=False))
    train(config)
    adapter = json.loads((tmp_path / "run/adapter/adapter_config.json").read_text())
    assert adapter["use_dora"] is True and sorted(adapter["target_modules"]) == ["q_proj", "v_proj"]


def test_unusable_setups_fail_with_a_clear_reason(tiny_model_dir, tiny_splits, tmp_path):
    from melancia.training.config import LoraConfig
    from melancia.errors import TrainingSetupError

    if not torch.cuda.is_available():
        with pytest.raises(TrainingSetupError, match="qlora needs a CUDA GPU"):
            train(tiny_train_config(tiny_model_dir, tiny_splits, tmp_path / "a", method="qlora"))
        with pytest.raises(TrainingSetupError, match="no CUDA device"):
            train(tiny_train_config(tiny_model_dir, tiny_splits, tmp_path / "b", device="cuda"))
    with pytest.raises(TrainingSetupError, match="lora.target_modules"):
        train(tiny_train_config(tiny_model_dir, tiny_splits, tmp_path / "c",
                                lora=LoraConfig(target_modules=["no_such_proj"])))


def test_resuming_under_another_batching_is_refused(tiny_model_dir, tiny_splits, tmp_path):
    from melancia.errors import TrainingSetupError

    quick = {"max_steps": 4, "save_every": 2, "eval_every": 4, "export": ExportConfig(merged=False, gguf=False)}
    train(tiny_train_config(tiny_model_dir, tiny_splits, tmp_path / "run", **quick))
    with pytest.raises(TrainingSetupError, match="written for another dataset or batching"):
        train(tiny_train_config(tiny_model_dir, tiny_splits, tmp_path / "run", tokens_per_batch=2048, **quick),
              resume=True)
