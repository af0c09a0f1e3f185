"""Writes a tiny Llama-style causal language model with random weights, and
a tokenizer for it, into a directory that vLLM (or transformers) loads as a
model: nothing is downloaded, so the LLM conformance tests need no hub.

Usage: python tiny_llm.py DIR

The tokenizer is a word-level one over a fixed vocabulary of lowercase
two-letter words: every token decodes to plain ASCII text on its own, so a
server streaming it sends one non-empty text delta per generated token
(byte-level BPE would give empty deltas for partial UTF-8 sequences), which
lets a test compare the streamed chunks with the server's usage figures.
The model's weights are random but seeded, so a run is repeatable.
"""
import itertools
import json
import os
import string
import sys

SPECIAL = ["<unk>", "<s>", "</s>"]
# Words the chat template and the tests' prompts use, so that they are not
# all <unk>.
PROMPT_WORDS = ["user", "assistant", "system", ":", "hello", "count", "to", "ten"]

# Chat template: role and content as plain words; a generation prompt ends
# with the assistant's role.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] }} : {{ message['content'] }} "
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant :{% endif %}"
)


def vocabulary():
    words = ["".join(p) for p in itertools.product(string.ascii_lowercase, repeat=2)]
    vocab = SPECIAL + PROMPT_WORDS + [w for w in words if w not in PROMPT_WORDS]
    return {token: i for i, token in enumerate(vocab)}


def write_tokenizer(out_dir):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = vocabulary()
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # The WordPiece decoder joins tokens with single spaces; without cleanup
    # it leaves each token's text as it is.
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out_dir)
    return vocab


def write_model(out_dir, vocab_size, bos_id, eos_id):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(20)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=1024,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        tie_word_embeddings=True,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(out_dir, safe_serialization=True)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: tiny_llm.py DIR\n")
        return 2
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    vocab = write_tokenizer(out_dir)
    write_model(out_dir, len(vocab), vocab["<s>"], vocab["</s>"])
    # One line for the caller: what was written.
    print(json.dumps({"dir": out_dir, "vocab_size": len(vocab)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
