"""GPT-2 with per-layer sizes, as VTrans prunes it, for Hugging Face `transformers` (`trust_remote_code=True`).

VTrans writes this file next to a pruned checkpoint whose layers differ in size; config.json's `auto_map` points
the Auto classes here:

    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=True)

config.json holds the pruned sizes (docs/model-format.md of VTrans):
    n_embd                      the pruned hidden width
    head_dim                    size of one attention head (no longer n_embd / n_head)
    layer_num_attention_heads   [L] heads per layer; 0: the attention sublayer is gone, with its LayerNorm
    layer_intermediate_size     [L] FFN neurons per layer; 0: the FFN sublayer is gone, with its LayerNorm
The VTrans scales are folded into the weights, so every layer is plain GPT-2 arithmetic on fewer units; a tied LM
head reads the token embeddings, and the final LayerNorm carries the inverse of their scales. Generation uses
transformers' key/value cache (a layer without attention keeps a one-channel placeholder there, so that the
cache's length stays right). This file needs only `torch` and `transformers`.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import GenerationMixin, GPT2Config, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.cache_utils import DynamicCache
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast, SequenceClassifierOutputWithPast


def layer_sizes(config) -> list[tuple[int, int]]:
    """(heads, FFN neurons) of every layer: the per-layer lists, else the uniform sizes."""
    n = config.n_layer
    heads = getattr(config, "layer_num_attention_heads", None) or [config.n_head] * n
    ffn = getattr(config, "layer_intermediate_size", None) or [config.n_inner or 4 * config.n_embd] * n
    return list(zip(heads, ffn))


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


class VTransGPT2Config(GPT2Config):
    """GPT-2's config with the per-layer sizes above; `n_embd` need not be a multiple of the heads."""

    def validate_architecture(self):
        n = self.n_layer
        for key in ("layer_num_attention_heads", "layer_intermediate_size"):
            v = getattr(self, key, None)
            if v is not None and len(v) != n:
                raise ValueError(f"{key} lists {len(v)} layers, but n_layer is {n}.")


class Conv1D(nn.Module):
    """GPT-2's linear layer: weight stored (in, out), y = x W + b."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out).normal_(std=0.02))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)


class VTransGPT2Attention(nn.Module):
    def __init__(self, config, heads: int, layer_idx: int):
        super().__init__()
        self.heads, self.head_dim, self.layer_idx = heads, getattr(config, "head_dim", None) or config.n_embd // config.n_head, layer_idx
        width = heads * self.head_dim
        self.c_attn = Conv1D(config.n_embd, 3 * width)
        self.c_proj = Conv1D(width, config.n_embd)
        self.scale = (self.head_dim**-0.5 if config.scale_attn_weights else 1.0) / (
            layer_idx + 1 if config.scale_attn_by_inverse_layer_idx else 1
        )
        self.attn_dropout = nn.Dropout(config.attn_pdrop)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, cache) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = (z.view(b, t, self.heads, self.head_dim).transpose(1, 2) for z in self.c_attn(x).split(self.heads * self.head_dim, dim=2))
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.scale + bias
        probs = self.attn_dropout(torch.softmax(scores.float(), dim=-1).to(q.dtype))
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, -1)
        return self.resid_dropout(self.c_proj(ctx))


class VTransGPT2MLP(nn.Module):
    def __init__(self, config, ffn: int):
        super().__init__()
        self.c_fc = Conv1D(config.n_embd, ffn)
        self.c_proj = Conv1D(ffn, config.n_embd)
        self.act = ACT2FN[config.activation_function]
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class VTransGPT2Block(nn.Module):
    """Pre-LN; a removed sublayer takes its LayerNorm with it."""

    def __init__(self, config, heads: int, ffn: int, layer_idx: int):
        super().__init__()
        eps = config.layer_norm_epsilon
        self.layer_idx = layer_idx
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=eps) if heads else None
        self.attn = VTransGPT2Attention(config, heads, layer_idx) if heads else None
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=eps) if ffn else None
        self.mlp = VTransGPT2MLP(config, ffn) if ffn else None

    def forward(self, x: torch.Tensor, bias: torch.Tensor, cache) -> torch.Tensor:
        if self.attn is not None and self.ln_1 is not None:
            x = x + self.attn(self.ln_1(x), bias, cache)
        elif cache is not None:  # keeps the cache's length right for a layer without attention
            placeholder = x.new_zeros(x.shape[0], 1, x.shape[1], 1)
            cache.update(placeholder, placeholder, self.layer_idx)
        if self.mlp is not None and self.ln_2 is not None:
            x = x + self.mlp(self.ln_2(x))
        return x


class VTransGPT2PreTrainedModel(PreTrainedModel):
    config_class = VTransGPT2Config
    base_model_prefix = "transformer"
    _no_split_modules = ["VTransGPT2Block"]
    _supports_cache_class = True


class VTransGPT2Model(VTransGPT2PreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList(VTransGPT2Block(config, h, f, i) for i, (h, f) in enumerate(layer_sizes(config)))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.post_init()

    def get_input_embeddings(self):
        return self.wte

    def set_input_embeddings(self, value):
        self.wte = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, use_cache=None, output_hidden_states=None, **kwargs):
        cache = take_cache(kwargs, use_cache)
        past = cache.get_seq_length() if cache is not None else 0
        t = input_ids.shape[1]
        if position_ids is None:
            position_ids = (torch.arange(t, device=input_ids.device) + past).unsqueeze(0)
        x = self.drop(self.wte(input_ids) + self.wpe(position_ids))
        bias = causal_bias(attention_mask, t, past, x.dtype, x.device)
        states = [x]
        for block in self.h:
            x = block(x, bias, cache)
            states.append(x)
        x = self.ln_f(x)
        if output_hidden_states:
            states[-1] = x
        return with_cache(
            BaseModelOutputWithPast, cache, last_hidden_state=x, hidden_states=tuple(states) if output_hidden_states else None
        )


class VTransGPT2LMHeadModel(VTransGPT2PreTrainedModel, GenerationMixin):
    """Logits over the vocabulary: the token embeddings' transpose when tied (the default), else `lm_head`."""

    def __init__(self, config):
        super().__init__(config)
        self.transformer = VTransGPT2Model(config)
        self.lm_head = None if config.tie_word_embeddings else nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.transformer.wte

    def forward(
        self, input_ids=None, attention_mask=None, position_ids=None, labels=None, use_cache=None, output_hidden_states=None, **kwargs
    ):
        out = self.transformer(
            input_ids, attention_mask, position_ids, use_cache=use_cache, output_hidden_states=output_hidden_states, **kwargs
        )
        head = self.transformer.wte.weight if self.lm_head is None else self.lm_head.weight
        logits = torch.matmul(out.last_hidden_state, head.t())
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1))
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        return with_cache(CausalLMOutputWithPast, cache, loss=loss, logits=logits, hidden_states=out.hidden_states)


class VTransGPT2ForSequenceClassification(VTransGPT2PreTrainedModel):
    """Classification at the rightmost non-padding token."""

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.transformer = VTransGPT2Model(config)
        self.score = nn.Linear(config.n_embd, config.num_labels, bias=False)
        self.post_init()

    def forward(
        self, input_ids=None, attention_mask=None, position_ids=None, labels=None, use_cache=None, output_hidden_states=None, **kwargs
    ):
        out = self.transformer(
            input_ids, attention_mask, position_ids, use_cache=use_cache, output_hidden_states=output_hidden_states, **kwargs
        )
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
