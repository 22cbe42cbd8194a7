"""What vLLM does that the sizing engine reproduces: its defaults and the memory it uses beyond weights,
KV cache and activations, each with where it comes from (vLLM's source, or a measurement here)."""

from dataclasses import dataclass

from ..units import GIB, MIB

# The vLLM release the engine's constants were checked against, and its default utilisation
# (vllm/config/cache.py: gpu_memory_utilization Field(default=0.92); 0.90 before v0.2x).
VLLM_VERSION = "v0.33"
DEFAULT_GPU_MEMORY_UTILIZATION = 0.92


# The values users can set for the settings vLLM restricts, stated once: the CLI's choices, the
# vram_check module and the server description all read them from here (tests/test_one_place_per_fact.py
# fails on a second copy). vLLM's own lists are longer; these are the ones qwen-infra sizes.
KV_CACHE_DTYPES = ("auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2")
QUANTIZATIONS = ("awq", "awq_marlin", "gptq", "gptq_marlin", "fp8", "compressed-tensors")
DTYPES = ("auto", "bfloat16", "float16", "float32")
EXECUTOR_BACKENDS = ("mp", "ray")
OPTIMIZATION_LEVELS = (0, 1, 2, 3)
BLOCK_SIZES = (8, 16, 32, 64, 128)

# --- vLLM behaviour the engine reproduces (checked against vLLM v0.33 unless said otherwise) ---------

# vllm/config/cache.py DEFAULT_BLOCK_SIZE; the KV cache is paged in blocks of this many tokens.
DEFAULT_BLOCK_SIZE = 16
# vllm/model_executor/layers/vocab_parallel_embedding.py: DEFAULT_VOCAB_PADDING_SIZE. Embedding and
# lm_head rows are padded to a multiple of this, then split evenly over the TP ranks.
VOCAB_PADDING = 64
# vllm/engine/arg_utils.py EngineArgs.get_batch_defaults(): GPUs with >= 70 GiB whose name does not
# contain "a100" get the large `vllm serve` defaults; every other GPU the small ones.
LARGE_GPU_MIN_BYTES = 70 * GIB
LARGE_GPU_BATCH_DEFAULTS = (8192, 1024)  # (max_num_batched_tokens, max_num_seqs), OPENAI_API_SERVER
SMALL_GPU_BATCH_DEFAULTS = (2048, 256)
# vllm/model_executor/layers/fused_moe: tokens are processed in chunks of VLLM_FUSED_MOE_CHUNK_SIZE, so
# the MoE intermediate buffers never exceed this many tokens.
FUSED_MOE_CHUNK_TOKENS = 32768
# vllm/config/compilation.py: max_cudagraph_capture_size defaults to min(2 x max_num_seqs, 512); the
# capture sizes are 1, 2, 4, then every 8 up to 256, then every 16.
MAX_CUDAGRAPH_CAPTURE_SIZE = 512
# A single GPU host has at most this many GPUs on one NVLink/PCIe fabric; TP should stay inside it.
GPUS_PER_NODE = 8

# --- memory vLLM does not see as weights, KV or activations ------------------------------------------

# CUDA context of one process: measured on the lent H100 (torch 2.11, CUDA 13.0) as the memory in use
# after torch initialised the device and before any allocation: 85017493504 - 84465090560 bytes
# = 0.51 GiB (tests/fixtures/gpu/h100-80gb-hbm3/torch-mem.json). vLLM takes its baseline snapshot after
# the context exists, so this is NOT charged against the reservation; it only has to fit in the
# (1 - gpu_memory_utilization) headroom or vLLM refuses to start ("Free memory on device ... is less
# than desired GPU memory utilization").
CUDA_CONTEXT_BYTES = int(0.5 * GIB)
# NCCL communicators (torch.distributed + vLLM's PyNccl, plus custom all-reduce IPC buffers) when
# tensor_parallel_size x pipeline_parallel_size > 1: ~0.82 GiB per GPU, measured on the lent H100/H200
# machines. NCCL (>= 2.22) connects peers lazily, so most of this is allocated by the first large
# collectives of the profiling run and charged to the reservation as non-torch memory: a TP=4 A100
# node started with only 1.18 GiB of headroom and then lost ~2 GiB more than single-GPU accounting
# explains (the regression cases, qwen_infra/sizing_cases.py). It is charged on NVLink/NVSwitch GPUs,
# where NCCL opens many channels; on PCIe-only cards (L4, A10G, L40S, workstation GPUs) a TP=2 log
# shows no such charge.
NCCL_COMMUNICATOR_BYTES = int(0.82 * GIB)
# cuBLAS/cuBLASLt workspaces created by the first GEMMs of the profiling run, which vLLM counts as
# "non-torch increase" and charges against the reservation: ~0.25 GiB, measured on the lent H100/H200.
CUBLAS_WORKSPACE_BYTES = int(0.25 * GIB)
# Everything else the profiling run leaves behind that is neither weights nor the activation peak:
# lazily loaded kernel modules, attention-backend and sampler workspaces. No single vLLM constant:
# fitted by qwen_infra.sizing_fit on the published logs of vLLM before v0.21 and tested on the later
# ones and our H200 starts (docs/sizing.md 4c; tests/test_sizing_fit.py holds it to the fit). It agrees
# with the 0.34-0.44 GiB "non_torch_memory" vLLM's V0 profiler printed on single GPUs
# (0.35 GiB in vLLM issue #10517; other published logs) once the cuBLAS part above is taken out.
PROFILE_WORKSPACE_BYTES = int(0.25 * GIB)
NON_TORCH_PROFILE_BYTES = CUBLAS_WORKSPACE_BYTES + PROFILE_WORKSPACE_BYTES
# The profiling run's sampler pass over max_num_seqs rows: logits in the model dtype (2 B), their fp32
# copy (4 B) and one fp32 probability/noise buffer (4 B) per vocabulary entry. Since the V2 model
# runner the dummy sampler skips top-k/top-p sorting (comment in _dummy_sampler_run), so no sort
# buffers; older V1 releases without FlashInfer also sorted (about 24 B per logit, see docs/sizing.md).
SAMPLER_BYTES_PER_LOGIT = 10
# Activation bytes per token per layer in the profiling forward pass, in units of the activation dtype:
# the residual stream, the normed input and the layer output (3 x hidden), plus the MLP's fused
# gate_up output (2 x intermediate) and its activated half (1 x intermediate) alive at the same time.
HIDDEN_BUFFERS = 3
MLP_BUFFERS = 3
# CUDA-graph estimate (vLLM >= v0.21 subtracts it, gpu_model_runner.profile_cudagraph_memory): about
# 2 MiB per captured size and mode (FULL and PIECEWISE) plus the activations of the largest capture.
CUDAGRAPH_BYTES_PER_CAPTURE = 2 * MIB


@dataclass(frozen=True)
class Release:
    """What one vLLM release counts inside its start-up memory budget, and what it holds beyond it while
    serving: its accounting rules, as data. The engine models the release it is given
    (Plan.vllm_version: the role's pinned one by default, the one the host installs in the preflight)."""

    version: str
    default_gpu_memory_utilization: float
    # Whether determine_available_memory subtracts the CUDA-graph estimate from the KV budget, for dense
    # and for MoE models. Where it does not, the graphs are captured after the KV cache is allocated, in
    # memory beyond gpu_memory_utilization x total.
    cudagraph_in_budget_dense: bool
    cudagraph_in_budget_moe: bool
    # Non-torch memory the profiling run leaves (cuBLAS workspaces and the like), single GPU.
    non_torch_profile_bytes: int
    # The profiling sampler pass, per logit (max_num_seqs x vocab), dense and MoE models.
    sampler_bytes_per_logit_dense: int
    sampler_bytes_per_logit_moe: int
    # The CUDA-graph estimate per captured size and mode, where it is in the budget.
    cudagraph_bytes_per_capture: int
    # The graph pool per layer on the rank, where graphs are captured outside the budget.
    cudagraph_pool_bytes_per_layer: int
    # Held beyond the reservation by a serving process whatever the model: the CUDA context (not
    # charged, it predates vLLM's baseline) and what is allocated after profiling.
    serving_overhead_bytes: int
    source: str


# The sampler's top-k/top-p path (vLLM's forward_native: fp32 logits, sorted values and int64 indices,
# the mask), per logit: vLLM 0.26's V1 runner profiles it (the MoE starts on the H200 peaked at 2.68 GiB
# = 18.3 B per logit of 1024 x 151936 plus the batch's hidden states); the V2 runner skips it when
# profiling, and the 32B server grew by 2.47 GiB (17.1 B per logit) beyond its reservation once
# `vllm bench serve` sent it 32 to 128 requests at once (docs/sizing.md, "measured on an H200").
SORTING_SAMPLER_BYTES_PER_LOGIT = 18

RELEASES = (
    Release(
        version="0.26",
        default_gpu_memory_utilization=0.92,
        # Model runner V2 is the default for every generate model that is not MoE or hybrid
        # (config/vllm.py _is_default_v2_model_runner_model), and its profile_cudagraph_memory()
        # returns 0 (v1/worker/gpu/model_runner.py); MoE models keep the V1 runner, which estimates.
        cudagraph_in_budget_dense=False,
        cudagraph_in_budget_moe=True,
        # "non-torch forward increase memory" was 0.22 GiB in every single-GPU start on the H200
        # (0.24 once, the MoE start that profiled CUDA graphs): the cuBLAS workspaces, nothing more.
        non_torch_profile_bytes=int(0.22 * GIB),
        # V2 (dense): the dummy sampler skips top-k/top-p; the engine keeps its v0.33 figure, which the
        # dense starts' peaks (the forward pass, or at most 1.61 GiB) do not exceed. V1 (MoE): sorts.
        sampler_bytes_per_logit_dense=10,
        sampler_bytes_per_logit_moe=SORTING_SAMPLER_BYTES_PER_LOGIT,
        # V1's estimate for Qwen3-30B-A3B: 0.64 GiB over PIECEWISE=51 + FULL=51 captures, less the
        # largest capture's activations (49 MiB): 5.9-6.0 MiB per capture.
        cudagraph_bytes_per_capture=6 * MIB,
        # V2's graph pool, captured after the KV cache: 1.00 GiB for Qwen3-8B (36 layers, 28.4 MiB a
        # layer), 1.87 GiB for Qwen3-32B (64 layers, 29.9 MiB), bf16 and fp8 KV alike.
        cudagraph_pool_bytes_per_layer=30 * MIB,
        # nvidia-smi while serving, less the reservation and the graph pool captured outside it:
        # 0.62-0.90 GiB for six of the seven servers (the most: the MoE server, whose graph pool came
        # out 0.16 GiB above vLLM's estimate); 1.19 GiB once (Qwen3-8B eager), within the sampler's
        # reserve below.
        serving_overhead_bytes=int(0.9 * GIB),
        source="vLLM 0.26.0's source (read from its wheel) and eight start-ups on the lent H200 "
        "(tests/fixtures/gpu/h200/vllm-0.26; docs/sizing.md, 'measured on an H200')",
    ),
    Release(
        version="0.33",
        default_gpu_memory_utilization=0.92,
        cudagraph_in_budget_dense=True,
        cudagraph_in_budget_moe=True,
        non_torch_profile_bytes=NON_TORCH_PROFILE_BYTES,
        sampler_bytes_per_logit_dense=SAMPLER_BYTES_PER_LOGIT,
        sampler_bytes_per_logit_moe=SAMPLER_BYTES_PER_LOGIT,
        cudagraph_bytes_per_capture=CUDAGRAPH_BYTES_PER_CAPTURE,
        cudagraph_pool_bytes_per_layer=0,  # in the budget: the estimate covers it
        serving_overhead_bytes=int(0.9 * GIB),  # as measured with 0.26 until 0.33 is measured
        source="vLLM v0.33's source: gpu_worker.determine_available_memory subtracts "
        "profile_cudagraph_memory() for every model (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1); the "
        "other constants as fitted to the published logs (docs/sizing.md)",
    ),
)
# The release the vllm role pins (roles/vllm/defaults/main.yml vllm_cuda_version).
DEFAULT_VLLM_RELEASE = "0.33"


def _version_key(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.strip().lstrip("v").split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def release_rules(version: str | None) -> Release:
    """The rules of the release `version` ("0.26.0", "v0.33", "0.33.1"): the newest known release at
    or below it (releases between two known ones are taken to keep the older one's rules), the oldest
    known one below them all."""
    wanted = _version_key(version or DEFAULT_VLLM_RELEASE)
    known = sorted(RELEASES, key=lambda r: _version_key(r.version))
    chosen = known[0]
    for release in known:
        if _version_key(release.version) <= wanted:
            chosen = release
    return chosen
