"""The sizing engine: will this model, with these vLLM arguments, fit these GPUs, and with how much KV cache?

It reproduces vLLM's own start-up accounting (V1 engine, gpu_worker.determine_available_memory), per
GPU rank:

    reservation   = usable memory x gpu_memory_utilization
    available_kv  = reservation - weights - activation peak of the profiling run
                    - non-torch memory allocated during profiling - CUDA-graph estimate
    num_blocks    = available_kv // (block_size x KV bytes per token on this rank); minimum over ranks

and then the checks vLLM makes (one request of max_model_len must fit) plus the divisibility rules it
enforces when it builds the model, so a plan vLLM would refuse is refused here first, with the reason
and a concrete fix. docs/sizing.md has every constant's origin and the comparison with real start-ups.

One job per file, in the order data flows:
    vllm_rules.py     what vLLM does that the engine reproduces: defaults and measured overheads
    errors.py         SizingError, the one exception for questions that cannot be answered
    architecture.py   model shapes: config.json and quantization configs, the catalog, --quantization
    weights.py        the weight inventory (computed or read from safetensors headers) per pipeline stage
    devices.py        GPUs as the engine sees them: usable bytes, NVLink, vLLM's batch defaults
    layout.py         the parallel layout (Plan) and the divisibility rules vLLM enforces
    memory.py         the accounting itself: size() per stage, and what does not fit
    suggest.py        fixes for a plan that does not fit, each re-sized to be sure it fits
    recommend.py      the smallest layout per GPU type for a context length and concurrency
    report.py         the host-level verdict the vram_check module returns

Stdlib only and no AnsibleModule import: Ansible ships these files to hosts, and the CLI, the Pulumi
program and the tests import them by name.
"""
