"""Peak GPU memory of a QLoRA run, predicted from the model's config alone (no weights are read).

The peak is the sum of:
- weights: decoder Linears in NF4 (0.53 bytes a value with double-quantized scales), embeddings and head in bf16
  (the input embedding in CPU memory with `offload_embeddings`, where the backend can and the head is separate).
  MoE experts in transformers 5 are fused 3-D parameters, not nn.Linear, so bitsandbytes leaves them in bf16
  unless the backend quantizes them (`Backend.quantizes_experts`).
- adapter: LoRA weights, gradients and 8-bit AdamW moments, about 10 bytes a parameter.
- activations, for a step's tokens (batch x max_seq_length, or two examples' worth where a passage's examples
  share a row): the checkpointed input of every layer (a backend that offloads
  keeps only two on the GPU), one layer's recomputed working set during backward, the bf16 weight that bitsandbytes
  dequantizes for a matmul, attention scores where the backend runs it eagerly (`Backend.eager_scores`), and the
  chunked loss.
The coefficients were fitted to peaks measured on an H100 (docs/benchmarks.md, "Memory plan").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from booktune.console import console
from booktune.errors import BooktuneError
from booktune.model import resolve_model
from booktune.training.backends.base import BackendError

if TYPE_CHECKING:
    from booktune.config import TrainConfig
    from booktune.training.backends.base import Backend

GIB = 2**30
NF4 = 0.53  # bytes per 4-bit value, absmax scales included
CONTEXT = 0.5 * GIB  # CUDA context and cuBLAS workspace: on the card, outside PyTorch's allocator
SLACK = 0.07  # allocator fragmentation: reserved over allocated
LAYER_WORK = 2.75  # live bf16 tensors of one layer's width, per token, while it is recomputed and differentiated
MLP_WORK = 2.75  # the same for the MLP's intermediate width (gate, up, act and their gradients)
ADAPTER = 10.0  # bytes per LoRA parameter: weight and gradient, plus AdamW's 8-bit moments (fp32 weights in Unsloth)
OFFLOADED = 2  # checkpointed layer inputs Unsloth keeps on the GPU while the rest sit in CPU memory
EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts")


class PlanError(BooktuneError):
    """A model whose config cannot be read or sized; the message names it."""


@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    head_dim: int
    tied: bool
    experts: int = 0  # 0: dense MLP
    top_k: int = 0
    model_type: str = ""

    @classmethod
    def from_config(cls, config: Any) -> Shape:
        c = config.get_text_config() if hasattr(config, "get_text_config") else config
        get = (lambda k, d=None: c.get(k, d)) if isinstance(c, dict) else (lambda k, d=None: getattr(c, k, d))
        heads = get("num_attention_heads")
        experts = next((get(k) for k in EXPERT_KEYS if get(k)), 0) or 0
        inter = get("moe_intermediate_size") if experts and get("moe_intermediate_size") else get("intermediate_size")
        return cls(get("hidden_size"), get("num_hidden_layers"), inter, get("vocab_size"), heads,
                   get("num_key_value_heads") or heads, get("head_dim") or get("hidden_size") // heads,
                   bool(get("tie_word_embeddings", False)), experts if experts > 1 else 0,
                   get("num_experts_per_tok") or 0, get("model_type") or "")

    def attention(self) -> list[tuple[int, int]]:
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        return [(h, q), (h, kv), (h, kv), (q, h)]

    def mlp(self) -> list[tuple[int, int]]:
        """(in, out) of the MLP projections of one expert (fused gate_up in MoE experts) or of the dense MLP."""
        h, i = self.hidden, self.intermediate
        return [(h, 2 * i), (i, h)] if self.experts else [(h, i), (h, i), (i, h)]

    def params(self) -> int:
        linear = sum(a * b for a, b in self.attention()) + sum(a * b for a, b in self.mlp()) * max(self.experts, 1)
        return linear * self.layers + self.vocab * self.hidden * (1 if self.tied else 2)


@dataclass(frozen=True)
class Plan:
    weights: float  # bytes
    layer: float  # one decoder layer's weights
    adapter: float
    activations: float
    overhead: float = CONTEXT
    experts_quantized: bool = True

    @property
    def allocated(self) -> float:
        """Predicted peak of torch.cuda.max_memory_allocated()."""
        return self.weights + self.adapter + self.activations

    @property
    def total(self) -> float:
        """What the card must hold: reserved memory plus the CUDA context."""
        return self.allocated * (1 + SLACK) + self.overhead

    def summary(self, card_bytes: float, per_gpu: bool = False) -> list[str]:
        """The parts and the verdict, as `booktune plan` prints them (`per_gpu`: one GPU's share of a split run)."""
        fits = "fits" if self.total <= card_bytes else "does NOT fit"
        head, tail = ("per GPU: ", " per GPU") if per_gpu else ("", "")
        return [f"  {head}base weights {self.weights / GIB:.2f} GiB, LoRA + optimizer {self.adapter / GIB:.2f} GiB, "
                f"activations {self.activations / GIB:.2f} GiB",
                f"  peak allocated {self.allocated / GIB:.1f} GiB{tail}; with allocator slack and CUDA context "
                f"{self.total / GIB:.1f} GiB of {card_bytes / GIB:.0f} GiB: {fits}"]


def gpu_view(train: TrainConfig) -> TrainConfig:
    """`train` as it runs on a GPU: 4-bit, checkpointing and the activation offload default on there."""
    unset = [k for k in ("load_in_4bit", "gradient_checkpointing", "offload_activations") if getattr(train, k) is None]
    on = dict.fromkeys(unset, True)
    return train.model_copy(update=on)


def experts_stay_bf16(shape: Shape, train: TrainConfig, backend: Backend) -> bool:
    """bitsandbytes quantizes nn.Linear only; transformers 5 stores MoE experts as fused 3-D parameters."""
    return bool(shape.experts) and not backend.quantizes_experts and train.load_in_4bit is not False


def weight_bytes(shape: Shape, train: TrainConfig, backend: Backend) -> tuple[float, float]:
    """(all weights, one decoder layer) in bytes."""
    per_value = NF4 if train.load_in_4bit is not False else 2.0
    attn = sum(a * b for a, b in shape.attention()) * per_value
    experts = sum(a * b for a, b in shape.mlp()) * max(shape.experts, 1)
    mlp = experts * (2.0 if experts_stay_bf16(shape, train, backend) else per_value)
    tables = 1 if shape.tied or (train.offload_embeddings and backend.offloads_embeddings) else 2
    embed = shape.vocab * shape.hidden * tables * 2.0
    return (attn + mlp) * shape.layers + embed, attn + mlp


def lora_params(shape: Shape, train: TrainConfig, backend: Backend) -> int:
    """LoRA parameters on the projections `train.target_modules` names ('all-linear': all of them). MoE experts get
    theirs where the backend quantizes them (Unsloth maps the MLP names onto the fused experts)."""
    names = [train.target_modules] if isinstance(train.target_modules, str) else list(train.target_modules)

    def wanted(*projections: str) -> bool:
        return names == ["all-linear"] or any(p in names for p in projections)

    attention = zip(("q_proj", "k_proj", "v_proj", "o_proj"), shape.attention())
    per_layer = sum(train.lora_r * (a + b) for name, (a, b) in attention if wanted(name))
    mlp_names = (("gate_proj", "up_proj"), ("down_proj",)) if shape.experts else (
        ("gate_proj",), ("up_proj",), ("down_proj",))
    mlp = sum(train.lora_r * (a + b) for proj, (a, b) in zip(mlp_names, shape.mlp()) if wanted(*proj))
    if not shape.experts:
        per_layer += mlp
    elif not experts_stay_bf16(shape, train, backend):
        per_layer += mlp * shape.experts
    return per_layer * shape.layers


def step_tokens(train: TrainConfig) -> tuple[int, int]:
    """(tokens, longest row) of the largest training step: batch x max_seq_length, and with a passage's examples
    packed into one row (`group_passages`), a row of up to two examples (packing.group_len)."""
    from booktune.training.packing import group_len

    tokens, row = train.batch_size * train.max_seq_length, train.max_seq_length
    if not (train.packing and train.group_passages):
        return tokens, row
    return group_len(row, tokens), group_len(row, row)


def activation_bytes(shape: Shape, train: TrainConfig, backend: Backend) -> float:
    """Peak activation memory of one training step (bf16), for its tokens (`step_tokens`)."""
    tokens, row = step_tokens(train)
    width = shape.hidden + (shape.heads + 2 * shape.kv_heads) * shape.head_dim
    routed = max(shape.top_k, 1) if shape.experts else 1
    layer = tokens * (LAYER_WORK * width + MLP_WORK * shape.intermediate * routed) * 2
    if train.gradient_checkpointing is False:
        return layer * shape.layers
    offloaded = backend.offloads_activations and train.offload_activations is not False
    kept = tokens * shape.hidden * 2 * (OFFLOADED if offloaded else shape.layers)
    dequant = max(a * b for a, b in shape.mlp()) * 2  # bf16 copy of the largest quantized matrix (one expert's)
    scores = 0.0
    if backend.eager_scores(shape.model_type):  # S x S scores with an fp32 softmax
        scores = train.batch_size * shape.heads * row ** 2 * 6
    loss = tokens * shape.hidden * 4 * 2  # chunked cross-entropy: fp32 hidden states and their gradient
    return kept + layer + dequant + scores + loss


def predict(shape: Shape, train: TrainConfig, backend: Backend) -> Plan:
    weights, layer = weight_bytes(shape, train, backend)
    return Plan(weights, layer, lora_params(shape, train, backend) * ADAPTER, activation_bytes(shape, train, backend),
                experts_quantized=not experts_stay_bf16(shape, train, backend))


def largest(shape: Shape, train: TrainConfig, backend: Backend, card_bytes: float, field: str) -> int:
    """The largest batch_size (or max_seq_length, in steps of 256) that fits the card; 0 if none."""
    step, best = (1, 0) if field == "batch_size" else (256, 0)
    value = step
    while value <= (256 if field == "batch_size" else 131072):
        if predict(shape, train.model_copy(update={field: value}), backend).total > card_bytes:
            break
        best, value = value, value + step
    return best


def load_shape(spec: str, *, trust_remote_code: bool = False) -> Shape:
    """The model's Shape from its config.json only ('default', a local folder, or a Hub id)."""
    from transformers import AutoConfig

    source = resolve_model(spec)
    try:
        config = AutoConfig.from_pretrained(source.path, trust_remote_code=trust_remote_code,
                                            local_files_only=not source.hub)
        return Shape.from_config(config)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise PlanError(f"{source.name}: cannot read the model config: {str(e).splitlines()[0]}") from None


def card_memory(device: str | None = None) -> float | None:
    """Total memory of `device`'s CUDA GPU (the first when None), in bytes; None without a GPU or for a CPU device."""
    import torch

    if not torch.cuda.is_available() or (device is not None and not str(device).startswith("cuda")):
        return None
    return float(torch.cuda.get_device_properties(torch.device(device or "cuda").index or 0).total_memory)


def check_hf_quantization(spec: str, backend: Backend, *, device: str | None = None,
                          trust_remote_code: bool = False) -> None:
    """Before loading a 4-bit base onto `device`: say that MoE experts stay bf16, and refuse when the weights cannot
    fit that card. A load onto the CPU (FSDP's, which then shards the weights across the cards) is not refused."""
    from booktune.config import TrainConfig

    shape = load_shape(spec, trust_remote_code=trust_remote_code)
    train = TrainConfig(model=spec, load_in_4bit=True)
    if not experts_stay_bf16(shape, train, backend):
        return
    weights = weight_bytes(shape, train, backend)[0]
    card = card_memory(device)
    message = (f"{spec}: bitsandbytes cannot quantize this model's {shape.experts} fused MoE experts, so its weights "
               f"alone take {weights / GIB:.1f} GiB on the {backend.name} backend")
    if card is not None and weights + CONTEXT > card:
        raise BackendError(f"{message}, more than this GPU's {card / GIB:.0f} GiB; use --backend unsloth, "
                           "which quantizes the experts")
    console.print(f"[yellow]note: {escape(message)}; --backend unsloth quantizes them")


def estimate(train: TrainConfig, backend: Backend) -> Plan:
    """One GPU's peak for `train` (read from the model's config). Raises PlanError when it cannot be read."""
    shape = load_shape(train.model, trust_remote_code=train.trust_remote_code)
    return predict(shape, gpu_view(train), backend)


ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]


def attention_only_line(shape: Shape, train: TrainConfig, backend: Backend, card_bytes: float,
                        total: float) -> list[str]:
    """Where LoRA on MoE experts makes a run too big: what LoRA on attention alone would need. Expert LoRA is most
    of an MoE run's trainable parameters (with their gradients and optimizer state)."""
    if not shape.experts or total <= card_bytes:
        return []
    lean = train.model_copy(update={"target_modules": ATTENTION})
    if lora_params(shape, lean, backend) >= lora_params(shape, train, backend):
        return []
    need = predict(shape, lean, backend).total
    flags = " ".join(f"--target-modules {name}" for name in ATTENTION)
    return [f"  with LoRA on attention alone ({flags}) this run would need {need / GIB:.1f} GiB"]


def describe(shape: Shape, train: TrainConfig, backend: Backend, card_bytes: float) -> list[str]:
    """The lines `booktune plan` prints."""
    train = gpu_view(train)
    p = predict(shape, train, backend)
    row = step_tokens(train)[1]
    together = f" (a passage's examples in one row: up to {row} tokens)" if row > train.max_seq_length else ""
    lines = [f"{shape.params() / 1e9:.2f}B parameters; {backend.name} backend, batch {train.batch_size} x "
             f"{train.max_seq_length} tokens{together}, LoRA r{train.lora_r}", *p.summary(card_bytes)]
    if not p.experts_quantized:
        lines.append(f"  bitsandbytes leaves the {shape.experts} fused MoE experts in bf16 on the {backend.name} "
                     "backend; --backend unsloth quantizes them")
    if backend.offloads_activations and train.gradient_checkpointing and train.offload_activations:
        kept = predict(shape, train.model_copy(update={"offload_activations": False}), backend).total
        lines.append(f"  checkpointed activations wait in CPU memory; with --no-offload-activations this run "
                     f"would need {kept / GIB:.1f} GiB: {'fits' if kept <= card_bytes else 'does NOT fit'}")
    if backend.offloads_embeddings and not shape.tied and not train.offload_embeddings and p.total > card_bytes:
        moved = predict(shape, train.model_copy(update={"offload_embeddings": True}), backend).total
        lines.append(f"  with --offload-embeddings (input embedding in CPU memory, slower steps) this run would need "
                     f"{moved / GIB:.1f} GiB")
    lines += attention_only_line(shape, train, backend, card_bytes, p.total)
    batch = largest(shape, train, backend, card_bytes, "batch_size")
    seq = largest(shape, train, backend, card_bytes, "max_seq_length")
    batch = f"{batch}+" if batch == 256 else batch or "none"  # the search stops at 256
    lines.append(f"  largest batch at {train.max_seq_length} tokens: {batch}; "
                 f"longest sequence at batch {train.batch_size}: {seq or 'none'}")
    return lines
