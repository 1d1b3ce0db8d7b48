#!/usr/bin/env python3
"""Prints llama.cpp's token ids for the parity strings, as a Rust table.

llama.cpp is the reference implementation that ships with the GGUF format.
Set up (builds llama.cpp from source, ~15 minutes on 2 cores):

    pip install llama-cpp-python==0.3.36
    python3 inference/tools/reference_tokens.py target/models/SmolLM2-135M-Instruct.Q4_1.gguf

The output replaces the EXPECTED table in inference/tests/tokenizer_parity.rs.
"""
import json
import sys

from llama_cpp import Llama

# Keep in sync with the strings in tests/tokenizer_parity.rs.
STRINGS = json.load(open(__file__.replace("reference_tokens.py", "parity_strings.json")))



def rust_str(text):
    """A Rust string literal for `text`."""
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return '"' + "".join(escapes.get(c, c) for c in text) + '"'


llm = Llama(model_path=sys.argv[1], vocab_only=True, verbose=False)
for text in STRINGS:
    literal = llm.tokenize(text.encode(), add_bos=False, special=False)
    control = llm.tokenize(text.encode(), add_bos=False, special=True)
    print(f"    ({rust_str(text)}, &{literal}, &{control}),")
