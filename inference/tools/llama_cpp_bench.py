#!/usr/bin/env python3
"""llama.cpp's speed on the same GGUF file and prompt as benches/inference.rs.

    pip install llama-cpp-python==0.3.36   # builds llama.cpp (~15 min on 2 cores)
    python3 inference/tools/llama_cpp_bench.py target/models/SmolLM2-135M-Instruct.Q4_1.gguf

Prints prompt-processing and generation tokens/s and time to first token for
one thread, median of five runs, plus the greedy summary text and the
process's peak resident memory (VmHWM) after loading and at the end.
"""
import resource
import statistics
import sys
import time

from llama_cpp import Llama

CONVERSATION = """Alice: Are we still on for the design review tomorrow at 10?
Bob: Yes, but the projector in room 4 is broken, so let's use room 7.
Alice: Fine. Can you bring the printed mock-ups and the budget sheet?
Bob: Sure. Carol said she might be late because of the dentist.
Alice: Then we start with the budget and do the mock-ups when she arrives.
Bob: Good plan. I'll also invite Dan from finance for the first half hour.
Alice: Perfect, and remind everyone to read the spec before the meeting."""
PROMPT = (
    "<|im_start|>system\nSummarise the conversation in two sentences.<|im_end|>\n"
    f"<|im_start|>user\n{CONVERSATION}<|im_end|>\n<|im_start|>assistant\n"
)
GENERATED = 64



def peak_rss_mib():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


llm = Llama(model_path=sys.argv[1], n_threads=1, n_threads_batch=1, n_ctx=2048, verbose=False)
rss_loaded = peak_rss_mib()
tokens = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
pp, ttft, tg = [], [], []
for _ in range(5):
    llm.reset()
    start = time.perf_counter()
    llm.eval(tokens)
    first = llm.sample(temp=0.0)
    prompt_done = time.perf_counter()
    out = [first]
    for _ in range(GENERATED - 1):
        llm.eval([out[-1]])
        out.append(llm.sample(temp=0.0))
    end = time.perf_counter()
    pp.append(len(tokens) / (prompt_done - start))
    ttft.append(prompt_done - start)
    tg.append((GENERATED - 1) / (end - prompt_done))
print(f"prompt tokens: {len(tokens)}")
print(f"prompt processing: {statistics.median(pp):.1f} tok/s")
print(f"time to first token: {statistics.median(ttft) * 1000:.1f} ms")
print(f"generation: {statistics.median(tg):.1f} tok/s")
print(f"peak RSS after loading: {rss_loaded:.0f} MiB; at the end: {peak_rss_mib():.0f} MiB")
print("greedy text:", repr(llm.detokenize(out).decode(errors="replace")))
