"""Shared fixtures: a temporary MELANCIA_HOME for every test, and a tiny ChatML tokenizer.

The packaged SmolLM2 is converted once per machine into ``.cache/models`` (outside git), shared by
every test's temporary home, so integration tests do not pay the GGUF conversion each time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# the test control plane fixtures (control_plane, scheduling_cluster) serve tests/k8s and tests/charts
pytest_plugins = ["tests.k8s.fixtures", "tests.cluster.fixtures"]
MODEL_CACHE = REPO / ".cache" / "models"

CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture(autouse=True)
def melancia_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("MELANCIA_HOME", str(home))
    monkeypatch.setenv("MELANCIA_MODEL_CACHE", str(MODEL_CACHE))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    return home


def _train_tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    corpus = [
        "O ACOS mede quanto você gastou em anúncios para cada real vendido.",
        "ROAS é a receita dividida pelo investimento em anúncios.",
        "Você é a MelancIA, especialista em Retail Media Ads no Brasil.",
        "system user assistant Mercado Livre Amazon Magalu Shopee",
    ] * 20
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>")
    fast.chat_template = CHATML_TEMPLATE
    return fast


_TINY = None


@pytest.fixture
def tiny_tokenizer():
    """A 400-token byte-level BPE with the ChatML template, trained in milliseconds."""
    global _TINY
    if _TINY is None:
        _TINY = _train_tiny_tokenizer()
    return _TINY


@pytest.fixture
def fake_provider():
    """The scripted provider class: ``fake_provider(reply_function)`` or ``fake_provider(fail_with=error)``."""
    from melancia.providers.fake import FakeProvider

    return lambda reply="ok", **kwargs: FakeProvider(reply=reply, **kwargs)


def pytest_collection_modifyitems(config, items):
    """``gpu`` tests need a CUDA device: they run on a machine that has one and are skipped elsewhere."""
    import torch

    if torch.cuda.is_available():
        return
    no_cuda = pytest.mark.skip(reason="no CUDA device here (gpu tests run on a machine with one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(no_cuda)
