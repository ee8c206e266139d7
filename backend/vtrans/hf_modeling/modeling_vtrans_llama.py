"""LLaMA with per-layer sizes, as VTrans prunes it, for Hugging Face `transformers` (`trust_remote_code=True`).

VTrans writes this file next to a pruned checkpoint whose layers differ in size; config.json's `auto_map` points
the Auto classes here:

    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=True)

config.json holds the pruned sizes (docs/model-format.md of VTrans):
    hidden_size                 the pruned hidden width
    head_dim                    size of one attention head
    layer_num_attention_heads   [L] query heads per layer; 0: the attention sublayer is gone, with its norm
    layer_num_key_value_heads   [L] key/value heads per layer (VTrans prunes whole key/value groups)
    layer_intermediate_size     [L] FFN neurons per layer; 0: the FFN sublayer is gone, with its norm
The VTrans scales are folded into the weights, so every layer is plain LLaMA arithmetic on fewer units (RMSNorm
in float32, rotary embeddings as transformers computes them for the config, SiLU-gated MLP). Generation uses
transformers' key/value cache (a layer without attention keeps a one-channel placeholder there, so that the
cache's length stays right). This file needs only `torch` and `transformers`.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import GenerationMixin, LlamaConfig, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.cache_utils import DynamicCache
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast, SequenceClassifierOutputWithPast
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding


def layer_sizes(config) -> list[tuple[int, int, int]]:
    """(query heads, key/value heads, FFN neurons) of every layer: the per-layer lists, else the uniform sizes."""
    n = config.num_hidden_layers
    heads = getattr(config, "layer_num_attention_heads", None) or [config.num_attention_heads] * n
    kv = getattr(config, "layer_num_key_value_heads", None) or [config.num_key_value_heads or config.num_attention_heads] * n
    ffn = getattr(config, "layer_intermediate_size", None) or [config.intermediate_size] * n
    return list(zip(heads, kv, ffn))


def with_cache(output_class, cache, **fields):
    """An output dataclass with the cache under the name this transformers version uses."""
    name = "cache" if "cache" in output_class.__dataclass_fields__ else "past_key_values"
    return output_class(**fields, **{name: cache})


def take_cache(kwargs: dict, use_cache: bool | None):
    cache = kwargs.pop("cache", None)
    if cache is None:
        cache = kwargs.pop("past_key_values", None)
    if isinstance(cache, tuple):  # the legacy tuple format of older versions
        from_legacy = getattr(DynamicCache, "from_legacy_cache", None)
        cache = from_legacy(cache) if from_legacy is not None else DynamicCache(cache)
    if cache is None and use_cache:
        cache = DynamicCache()
    return cache


def causal_bias(attention_mask: torch.Tensor | None, t: int, past: int, dtype: torch.dtype, device) -> torch.Tensor:
    """Additive (B or 1, 1, T, past + T) bias: no attention to later positions, nor to padding."""
    neg = torch.finfo(dtype).min
    q = torch.arange(t, device=device) + past
    k = torch.arange(past + t, device=device)
    bias = (k[None, :] > q[:, None]).to(dtype)[None, None] * neg
    if attention_mask is not None:
        padding = (1.0 - attention_mask[:, None, None, -(past + t) :].to(dtype)) * neg
        bias = (bias + padding).clamp(min=neg)
    return bias


class VTransLlamaConfig(LlamaConfig):
    """LLaMA's config with the per-layer sizes above; `hidden_size` need not be a multiple of the heads (each
    layer's query heads × `head_dim` is its attention width)."""

    def validate_architecture(self):
        n = self.num_hidden_layers
        for key in ("layer_num_attention_heads", "layer_num_key_value_heads", "layer_intermediate_size"):
            v = getattr(self, key, None)
            if v is not None and len(v) != n:
                raise ValueError(f"{key} lists {len(v)} layers, but num_hidden_layers is {n}.")
        for i, (h, g, _) in enumerate(layer_sizes(self)):
            if (h == 0) != (g == 0) or (g and h % g):
                raise ValueError(f"layer {i}: {h} query heads are not a multiple of {g} key/value heads.")


class VTransLlamaRMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * x.to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class VTransLlamaAttention(nn.Module):
    def __init__(self, config, heads: int, kv_heads: int, layer_idx: int):
        super().__init__()
        d = config.head_dim
        self.heads, self.kv_heads, self.head_dim, self.layer_idx = heads, kv_heads, d, layer_idx
        bias = config.attention_bias
        self.q_proj = nn.Linear(config.hidden_size, heads * d, bias=bias)
        self.k_proj = nn.Linear(config.hidden_size, kv_heads * d, bias=bias)
        self.v_proj = nn.Linear(config.hidden_size, kv_heads * d, bias=bias)
        self.o_proj = nn.Linear(heads * d, config.hidden_size, bias=bias)
        self.dropout = nn.Dropout(config.attention_dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        rep = self.heads // self.kv_heads  # query head j reads key/value head j // rep
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.head_dim**-0.5 + bias
        probs = self.dropout(torch.softmax(scores.float(), dim=-1).to(q.dtype))
        return self.o_proj(torch.matmul(probs, v).transpose(1, 2).reshape(b, t, -1))


class VTransLlamaMLP(nn.Module):
    def __init__(self, config, ffn: int):
        super().__init__()
        bias = config.mlp_bias
        self.gate_proj = nn.Linear(config.hidden_size, ffn, bias=bias)
        self.up_proj = nn.Linear(config.hidden_size, ffn, bias=bias)
        self.down_proj = nn.Linear(ffn, config.hidden_size, bias=bias)
        self.act = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class VTransLlamaDecoderLayer(nn.Module):
    """Pre-norm; a removed sublayer takes its norm with it."""

    def __init__(self, config, heads: int, kv_heads: int, ffn: int, layer_idx: int):
        super().__init__()
        eps = config.rms_norm_eps
        self.layer_idx = layer_idx
        self.input_layernorm = VTransLlamaRMSNorm(config.hidden_size, eps) if heads else None
        self.self_attn = VTransLlamaAttention(config, heads, kv_heads, layer_idx) if heads else None
        self.post_attention_layernorm = VTransLlamaRMSNorm(config.hidden_size, eps) if ffn else None
        self.mlp = VTransLlamaMLP(config, ffn) if ffn else None

    def forward(self, x: torch.Tensor, bias: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache) -> torch.Tensor:
        if self.self_attn is not None and self.input_layernorm is not None:
            x = x + self.self_attn(self.input_layernorm(x), bias, cos, sin, cache)
        elif cache is not None:  # keeps the cache's length right for a layer without attention
            placeholder = x.new_zeros(x.shape[0], 1, x.shape[1], 1)
            cache.update(placeholder, placeholder, self.layer_idx)
        if self.mlp is not None and self.post_attention_layernorm is not None:
            x = x + self.mlp(self.post_attention_layernorm(x))
        return x


class VTransLlamaPreTrainedModel(PreTrainedModel):
    config_class = VTransLlamaConfig
    base_model_prefix = "model"
    _no_split_modules = ["VTransLlamaDecoderLayer"]
    _supports_cache_class = True


class VTransLlamaModel(VTransLlamaPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(VTransLlamaDecoderLayer(config, h, g, f, i) for i, (h, g, f) in enumerate(layer_sizes(config)))
        self.norm = VTransLlamaRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(config=config)
        self.post_init()

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, use_cache=None, output_hidden_states=None, **kwargs):
        cache = take_cache(kwargs, use_cache)
        past = cache.get_seq_length() if cache is not None else 0
        t = input_ids.shape[1]
        if position_ids is None:
            position_ids = (torch.arange(t, device=input_ids.device) + past).unsqueeze(0)
        x = self.embed_tokens(input_ids)
        bias = causal_bias(attention_mask, t, past, x.dtype, x.device)
        cos, sin = self.rotary_emb(x, position_ids)
        states = [x]
        for layer in self.layers:
            x = layer(x, bias, cos, sin, cache)
            states.append(x)
        x = self.norm(x)
        if output_hidden_states:
            states[-1] = x
        return with_cache(
            BaseModelOutputWithPast, cache, last_hidden_state=x, hidden_states=tuple(states) if output_hidden_states else None
        )


class VTransLlamaForCausalLM(VTransLlamaPreTrainedModel, GenerationMixin):
    """Logits over the vocabulary from `lm_head`, or from the token embeddings' transpose when tied."""

    def __init__(self, config):
        super().__init__(config)
        self.model = VTransLlamaModel(config)
        self.lm_head = None if config.tie_word_embeddings else nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def forward(
        self, input_ids=None, attention_mask=None, position_ids=None, labels=None, use_cache=None, output_hidden_states=None, **kwargs
    ):
        out = self.model(input_ids, attention_mask, position_ids, use_cache=use_cache, output_hidden_states=output_hidden_states, **kwargs)
        head = self.model.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        logits = torch.matmul(out.last_hidden_state, head.t())
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1))
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        return with_cache(CausalLMOutputWithPast, cache, loss=loss, logits=logits, hidden_states=out.hidden_states)


class VTransLlamaForSequenceClassification(VTransLlamaPreTrainedModel):
    """Classification at the rightmost non-padding token."""

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = VTransLlamaModel(config)
        self.score = nn.Linear(config.hidden_size, config.num_labels, bias=False)
        self.post_init()

    def forward(
        self, input_ids=None, attention_mask=None, position_ids=None, labels=None, use_cache=None, output_hidden_states=None, **kwargs
    ):
        out = self.model(input_ids, attention_mask, position_ids, use_cache=use_cache, output_hidden_states=output_hidden_states, **kwargs)
        logits = self.score(out.last_hidden_state)
        pad = self.config.pad_token_id
        if pad is None:
            last = torch.full((input_ids.shape[0],), input_ids.shape[1] - 1, device=input_ids.device)
        else:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            last = (positions * (input_ids != pad)).argmax(-1)
        pooled = logits[torch.arange(input_ids.shape[0], device=input_ids.device), last]
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(pooled.view(-1, self.num_labels), labels.view(-1))
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        return with_cache(SequenceClassifierOutputWithPast, cache, loss=loss, logits=pooled, hidden_states=out.hidden_states)
