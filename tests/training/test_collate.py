import pytest
import torch

from melancia.training.collate import (
    IGNORE,
    NoTrainableLabelsError,
    block_causal_mask,
    encode_chat,
    pack,
    pad_batch,
    plan_packs,
)

CHAT = [{"role": "system", "content": "Você é a MelancIA."},
        {"role": "user", "content": "O que é ACOS?"},
        {"role": "assistant", "content": "ACOS é investimento dividido pela receita."},
        {"role": "user", "content": "E ROAS?"},
        {"role": "assistant", "content": "ROAS é receita dividida pelo investimento."}]


def labelled_text(tokenizer, encoded):
    return tokenizer.decode([t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE])


def test_only_assistant_turns_and_their_end_of_turn_are_trained(tiny_tokenizer):
    encoded = encode_chat(tiny_tokenizer, CHAT)
    assert labelled_text(tiny_tokenizer, encoded) == (
        "ACOS é investimento dividido pela receita.<|im_end|>\nROAS é receita dividida pelo investimento.<|im_end|>\n")
    end_of_turn = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    trained_eot = [i for i, (t, l) in enumerate(zip(encoded.input_ids, encoded.labels)) if t == end_of_turn and l != IGNORE]
    all_eot = [i for i, t in enumerate(encoded.input_ids) if t == end_of_turn]
    assert len(trained_eot) == 2 and len(all_eot) == 5  # system and user end-of-turn stay masked


def test_padding_is_masked_by_position_even_when_pad_is_eos(tiny_tokenizer):
    eos = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    short, long = encode_chat(tiny_tokenizer, CHAT[:3]), encode_chat(tiny_tokenizer, CHAT)
    batch = pad_batch([short, long], pad_token_id=eos)
    row = batch["labels"][0]
    assert int(batch["attention_mask"][0].sum()) == len(short)
    assert (row[len(short):] == IGNORE).all()
    assert (row[:len(short)] == torch.tensor(short.labels)).all()
    assert int((row == eos).sum()) == 1  # the real end-of-turn keeps its label although pad == eos


def test_batch_without_trainable_label_is_refused(tiny_tokenizer):
    truncated = encode_chat(tiny_tokenizer, CHAT, max_length=8)
    with pytest.raises(NoTrainableLabelsError, match="no trainable label"):
        pad_batch([truncated], pad_token_id=0)
    with pytest.raises(NoTrainableLabelsError):
        pack([truncated])


def test_pack_positions_restart_and_mask_blocks_cross_attention(tiny_tokenizer):
    a, b = encode_chat(tiny_tokenizer, CHAT[:3]), encode_chat(tiny_tokenizer, CHAT)
    packed = pack([a, b])
    assert packed["input_ids"].shape == (1, len(a) + len(b))
    assert packed["position_ids"][0, len(a)] == 0 and packed["position_ids"][0, -1] == len(b) - 1
    mask = block_causal_mask(packed["seq_lens"])[0, 0]
    assert mask[len(a), len(a) - 1] < 0  # first token of b cannot see a
    assert mask[len(a) + 3, len(a)] == 0 and mask[2, 3] < 0  # causal inside each example


def test_plan_packs_respects_budget_and_keeps_every_example():
    lengths = [50, 300, 120, 200, 80, 400, 30]
    packs = plan_packs(lengths, 512)
    assert sorted(i for p in packs for i in p) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in p) <= 512 for p in packs)
    assert len(packs) == 3 and plan_packs(lengths, 512) == packs


def tiny_llama(vocab_size):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         initializer_range=0.5)  # large weights: attention matters, leaks show
    return LlamaForCausalLM(config).eval()


def token_loss_sum(model, input_ids, labels, **kwargs):
    logits = model(input_ids=input_ids, **kwargs).logits[:, :-1].float()
    targets = labels[:, 1:]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")


def test_packed_loss_equals_unpacked_loss(tiny_tokenizer):
    model = tiny_llama(len(tiny_tokenizer))
    chats = [encode_chat(tiny_tokenizer, CHAT[:3]), encode_chat(tiny_tokenizer, CHAT),
             encode_chat(tiny_tokenizer, [CHAT[1], CHAT[2]])]
    with torch.no_grad():
        separate = sum(token_loss_sum(model, torch.tensor([c.input_ids]), torch.tensor([c.labels])) for c in chats)
        packed = pack(chats)
        # the label shift must not cross example boundaries: the first label of each example is masked anyway
        together = token_loss_sum(model, packed["input_ids"], packed["labels"], position_ids=packed["position_ids"],
                                  attention_mask=block_causal_mask(packed["seq_lens"]))
        leaky = token_loss_sum(model, packed["input_ids"], packed["labels"])
    assert abs(float(separate - together)) < 1e-3 * float(separate)
    assert abs(float(separate - leaky)) > 1e-2 * float(separate)  # without the mask, examples contaminate each other
