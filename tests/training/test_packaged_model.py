"""The whole training path on the packaged SmolLM2: a few steps, then llama.cpp chats with the export."""

import pytest

from melancia.tracking import TrackingConfig
from melancia.training.config import ExportConfig, TrainConfig
from melancia.training.trainer import train
from tests.training.conftest import write_splits


@pytest.mark.integration
def test_packaged_model_trains_and_its_gguf_chats_in_llama_cpp(tmp_path):
    import llama_cpp
    config = TrainConfig(dataset_dir=write_splits(tmp_path / "splits", train=6, valid=2), output_dir=tmp_path / "run",
                         run_name="smollm2-smoke", tokens_per_batch=1024, max_steps=2, eval_every=2,
                         learning_rate=1e-3, export=ExportConfig(gguf_type="f16"),
                         tracking=TrackingConfig(registered_model=None))
    result = train(config)
    assert result.state.best_eval_loss is not None and result.exports.gguf is not None
    assert 'TEMPLATE """' in result.exports.modelfile.read_text()

    llm = llama_cpp.Llama(model_path=str(result.exports.gguf), n_ctx=1024, verbose=False, seed=0)
    assert "<|im_start|>" in llm.metadata["tokenizer.chat_template"]
    assert llm.metadata["tokenizer.ggml.pre"] == "smollm"
    reply = llm.create_chat_completion([{"role": "system", "content": config.system_prompt},
                                        {"role": "user", "content": "O que é ACOS?"}],
                                       max_tokens=24, temperature=0.0)
    text = reply["choices"][0]["message"]["content"]
    assert len(text.split()) >= 3 and "<|im_start|>" not in text and "<|im_end|>" not in text
