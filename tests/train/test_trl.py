"""rlaif's DPO and IPO losses against the published formulas and TRL's DPOTrainer (a test-only dependency)
on the same pairs, and the KTO loss and reference point against TRL's KTOTrainer, with a reference model
unlike the policy so the loss is away from its starting point.

Agreement needs both the tokenization (chat template, masking) and the loss arithmetic to match. The
formulas are evaluated on log-probs from a plain transformers forward (full logits, log_softmax); rlaif
matches them to 1e-5. TRL computes log-probs with its own fused, tiled LM head, which differs from the
plain forward by about 1e-4 relative on this model, hence the looser tolerance against TRL.
"""
from __future__ import annotations

import json

import pytest
import torch

trl = pytest.importorskip("trl")

PAIRS = [
    {"prompt": [{"role": "user", "content": "Name a colour."}],
     "chosen": [{"role": "assistant", "content": "Blue."}],
     "rejected": [{"role": "assistant", "content": "I would rather not say anything about colours."}]},
    {"prompt": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Two plus two?"}],
     "chosen": [{"role": "assistant", "content": "Four."}], "rejected": [{"role": "assistant", "content": "Five"}]},
    {"prompt": [{"role": "user", "content": "Say hi."}], "chosen": [{"role": "assistant", "content": "Hi!"}],
     "rejected": [{"role": "assistant", "content": "Goodbye, see you later."}]},
    {"prompt": [{"role": "user", "content": "A fruit?"}], "chosen": [{"role": "assistant", "content": "An apple."}],
     "rejected": [{"role": "assistant", "content": "Stone."}]},
]


@pytest.fixture(scope="module")
def reference_dir(tiny_model_dir, tmp_path_factory):
    """The tiny Llama with different random weights: a reference unlike the policy."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = type(model)(model.config)
    out = tmp_path_factory.mktemp("ref")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def _trl_loss(policy_dir, ref_dir, tmp_path, loss_type: str, beta: float) -> float:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    tok = AutoTokenizer.from_pretrained(policy_dir)
    args = DPOConfig(output_dir=str(tmp_path / "trl"), per_device_train_batch_size=4, beta=beta, loss_type=loss_type,
                     max_length=256, report_to=[], use_cpu=True, save_strategy="no", seed=0)
    trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(policy_dir),
                         ref_model=AutoModelForCausalLM.from_pretrained(ref_dir), args=args,
                         train_dataset=Dataset.from_list(PAIRS), processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        return float(trainer.compute_loss(trainer.model, batch))


@pytest.mark.parametrize("loss_type,beta", [("sigmoid", 0.1), ("ipo", 0.5)])
def test_first_step_loss_equals_trl(tiny_model_dir, reference_dir, tmp_path, loss_type, beta):
    from rlaif.train.dpo import train_dpo

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    ours = train_dpo(data=str(data), model=str(tiny_model_dir), reference=str(reference_dir), out=str(tmp_path / "o"),
                     max_steps=1, batch_size=4, micro_batch_size=4, eval_fraction=0.0, beta=beta,
                     loss_type=loss_type, max_length=256, max_prompt_length=128, threads=1)
    formula = _formula_loss(tiny_model_dir, reference_dir, loss_type, beta)
    assert abs(formula - (0.6931 if loss_type == "sigmoid" else (1 / (2 * beta)) ** 2)) > 1e-2  # away from step 0
    assert ours.train["loss"] == pytest.approx(formula, rel=1e-5)
    assert ours.train["loss"] == pytest.approx(_trl_loss(tiny_model_dir, reference_dir, tmp_path, loss_type, beta),
                                               rel=2e-3)


def _formula_loss(policy_dir, ref_dir, loss_type: str, beta: float) -> float:
    """DPO: mean of -log σ(βΔ); IPO: mean of (Δ̄ - 1/(2β))² with per-token mean log-ratios Δ̄."""
    import math

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlaif.train.tokenize import ChatTokenizer

    tok = AutoTokenizer.from_pretrained(policy_dir)
    enc = ChatTokenizer(tok, 256, 128)
    policy, ref = (AutoModelForCausalLM.from_pretrained(d).eval() for d in (policy_dir, ref_dir))

    def logp(model, prompt, comp) -> float:
        with torch.no_grad():
            logits = model(torch.tensor([prompt + comp])).logits[0, len(prompt) - 1:-1].double()
        return torch.log_softmax(logits, -1).gather(1, torch.tensor(comp)[:, None]).sum().item()

    losses = []
    for p in PAIRS:
        it = enc(p["prompt"], [p["chosen"], p["rejected"]])
        ratio = [logp(policy, it.prompt, c) - logp(ref, it.prompt, c) for c in it.completions]
        if loss_type == "sigmoid":
            losses.append(math.log1p(math.exp(-beta * (ratio[0] - ratio[1]))))
        else:
            d = ratio[0] / len(it.completions[0]) - ratio[1] / len(it.completions[1])
            losses.append((d - 1 / (2 * beta)) ** 2)
    return sum(losses) / len(losses)


UNPAIRED = [
    {"prompt": [{"role": "user", "content": "Name a colour."}],
     "completion": [{"role": "assistant", "content": "Blue."}], "label": True},
    {"prompt": [{"role": "user", "content": "Two plus two?"}],
     "completion": [{"role": "assistant", "content": "Five"}], "label": False},
    {"prompt": [{"role": "user", "content": "Say hi."}], "completion": [{"role": "assistant", "content": "Hi!"}],
     "label": True},
    {"prompt": [{"role": "user", "content": "A fruit?"}],
     "completion": [{"role": "assistant", "content": "Stone, or perhaps a chair."}], "label": False},
]


def _trl_kto(policy_dir, ref_dir, tmp_path, beta: float) -> tuple[float, float]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import KTOConfig, KTOTrainer

    args = KTOConfig(output_dir=str(tmp_path / "trl-kto"), per_device_train_batch_size=4, beta=beta, max_length=256,
                     report_to=[], use_cpu=True, save_strategy="no", seed=0)
    trainer = KTOTrainer(model=AutoModelForCausalLM.from_pretrained(policy_dir),
                         ref_model=AutoModelForCausalLM.from_pretrained(ref_dir), args=args,
                         train_dataset=Dataset.from_list(UNPAIRED),
                         processing_class=AutoTokenizer.from_pretrained(policy_dir))
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        loss = float(trainer.compute_loss(trainer.model, batch))
    mode = "train" if trainer.model.training else "eval"
    return loss, trainer._metrics[mode]["kl"][-1]


def test_kto_first_step_loss_and_reference_point_equal_trl(tiny_model_dir, reference_dir, tmp_path):
    """TRL pairs example i with example i-1's completion for the KL reference point; rlaif draws a fixed random
    derangement, which for seed 3 is that same cycle on 4 examples, so both average the same mismatched pairs."""
    from rlaif.train.data import mismatched_partners
    from rlaif.train.kto import train_kto

    assert mismatched_partners(4, 3) == [3, 0, 1, 2]
    data = tmp_path / "unpaired.jsonl"
    data.write_text("".join(json.dumps(x) + "\n" for x in UNPAIRED))
    ours = train_kto(data=str(data), model=str(reference_dir), reference=str(tiny_model_dir), out=str(tmp_path / "o"),
                     max_steps=1, batch_size=4, micro_batch_size=4, eval_fraction=0.0, beta=0.5, seed=3,
                     max_length=256, max_prompt_length=128, threads=1)
    loss, kl = _trl_kto(reference_dir, tiny_model_dir, tmp_path, beta=0.5)
    assert kl > 0.05  # the reference point is not clamped to zero here, so its value is compared too
    assert ours.train["kl"] == pytest.approx(kl, abs=2e-3)  # a difference of log-probs: TRL's fused head moves it ~1e-3
    assert ours.train["loss"] == pytest.approx(loss, rel=2e-3)
