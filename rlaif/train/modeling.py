"""Models for training: loading (optionally with LoRA), the log-prob and reward heads, reference log-probs.

`SequenceLogProbs` and `SequenceRewards` are small nn.Modules around a transformers model, so DDP/FSDP
wrap them whole (their forward is the one that syncs gradients). Log-probs are computed only at the
completion positions: the LM head never runs on prompt or padding tokens.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rlaif.errors import ConfigError, MissingDependency
from rlaif.localmodel import resolve_model_path
from rlaif.train.batching import Batch


def model_path(spec: str) -> str:
    path = resolve_model_path(spec)
    if not (Path(path) / "config.json").exists():
        raise ConfigError(f"model {spec!r} is not a local transformers directory (no config.json at {path}). "
                          "Fix: pass --model local or the path of a saved model (hub ids are not downloaded)")
    return path


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token_id is None:  # padding is masked everywhere; any id will do
        tok.pad_token = tok.eos_token
    return tok


def load_model(path: str, kind: str, tok, lora=None, gradient_checkpointing: bool = False) -> nn.Module:
    """`kind` is "causal" or "reward" (a sequence-classification head with one output)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    if kind == "causal":
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    else:
        from transformers.utils import logging as hf_logging

        # A causal model becomes a reward model here: its new head is expected to be missing, and transformers'
        # load report saying so is noise on the console.
        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
        finally:
            hf_logging.set_verbosity(level)
    model.config.pad_token_id = tok.pad_token_id
    model.config.use_cache = False
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if lora is not None:
        model = add_lora(model, kind, lora, gradient_checkpointing)
    return model


def add_lora(model: nn.Module, kind: str, lora, gradient_checkpointing: bool = False) -> nn.Module:
    try:
        from peft import LoraConfig, TaskType, get_peft_model
    except ImportError:
        raise MissingDependency("peft", extra="train", why="lora needs it") from None
    cfg = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                     target_modules=lora.target_modules,
                     task_type=TaskType.CAUSAL_LM if kind == "causal" else TaskType.SEQ_CLS)
    if gradient_checkpointing:  # frozen embeddings: checkpointed blocks need an input that requires grad
        model.enable_input_require_grads()
    return get_peft_model(model, cfg)


def base_model(model: nn.Module) -> nn.Module:
    """The transformers model under a peft wrapper (LoRA layers stay injected in it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _backbone(model: nn.Module) -> nn.Module:
    base = base_model(model)
    return getattr(base, base.base_model_prefix)


def lm_logits(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """fp32 logits of the LM head on hidden states of any leading shape, soft-capped as the model's config says."""
    base = base_model(model)
    logits = base.get_output_embeddings()(hidden).float()
    cap = getattr(base.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


class SequenceLogProbs(nn.Module):
    """Summed log-probabilities of each completion (and their token counts) for a `Batch`."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = _backbone(self.model)(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                       position_ids=batch.position_ids, use_cache=False).last_hidden_state
        logits = lm_logits(self.model, hidden[batch.tgt_row, batch.tgt_pos])  # only positions predicting completions
        token_logps = -F.cross_entropy(logits, batch.tgt_token, reduction="none")
        logps = token_logps.new_zeros(batch.n_seqs).index_add(0, batch.tgt_seq, token_logps)
        counts = token_logps.new_zeros(batch.n_seqs).index_add(0, batch.tgt_seq, torch.ones_like(token_logps))
        return logps, counts


class SequenceRewards(nn.Module):
    """One scalar per sequence from a sequence-classification model, read at the sequence's last token.

    Read by position, not by searching for the pad id (which is often the EOS id as well)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: Batch) -> torch.Tensor:
        base = base_model(self.model)
        hidden = _backbone(self.model)(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                       position_ids=batch.position_ids, use_cache=False).last_hidden_state
        return base.score(hidden[batch.last_row, batch.last_pos]).squeeze(-1).float()


def attention_supports_shared_prompt(model: nn.Module) -> bool:
    """Shared-prompt rows need a custom 4D boolean mask, which the sdpa path takes as it is."""
    return getattr(base_model(model).config, "_attn_implementation", "sdpa") == "sdpa"


@contextlib.contextmanager
def reference_mode(model: nn.Module):
    """The reference policy of a LoRA model is the base model: adapters off."""
    if hasattr(model, "disable_adapter"):
        with model.disable_adapter():
            yield
    else:
        yield


def cache_key(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


# ---- library noise: transformers' loading bars and LOAD REPORT tables -----------------------------------
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_REPORTING = ("transformers.modeling_utils", "transformers.modeling_layers", "transformers.integrations.peft")


class _LoadReportFilter(logging.Filter):
    """transformers' LOAD REPORT (a colored table) becomes one plain line when weights were newly initialised
    or reshaped (a real warning: those weights are random), and nothing when checkpoint keys were only left
    unused (a head of another task; the reward-model loads refuse untrained heads on their own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if "LOAD REPORT" not in msg:
            return True
        text = _ANSI.sub("", msg)
        missing, mismatched = len(re.findall(r"\bMISSING\b", text)), len(re.findall(r"\bMISMATCH\b", text))
        # each status word appears once more in the report's notes than it has rows
        missing, mismatched = max(missing - 1, 0), max(mismatched - 1, 0)
        if not missing and not mismatched:
            return False
        head = text.split("\n", 1)[0].replace(" LOAD REPORT", "")
        record.msg, record.args = (f"{head}: {missing} weight(s) missing and {mismatched} of another shape were "
                                   "newly initialised (random)"), None
        return True


_FILTER = _LoadReportFilter()


def quiet_library_loads() -> None:
    """For the rest of the process: no transformers loading/writing bars, load reports reduced to real warnings."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()
    for name in _REPORTING:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
