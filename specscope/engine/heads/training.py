"""Training draft heads by self-distillation on the target's own greedy outputs (CPU-feasible, resumable).

    data = build_data(target, requests, ...)              # data.py: greedy continuations + features
    head = train_head(target, data, TrainSettings(kind="eagle3"), state_path=DIR / "train_state.pt")

Losses (labels are the target's own greedy choices, restricted to the draft vocabulary):
- eagle: smooth-L1 between the predicted and the target's next feature + `cls_weight` x cross-entropy
  of the target's head on the predicted feature (EAGLE-1), with uniform noise on the input features;
- eagle3: cross-entropy at each of `ttt_steps` training-time-test steps (own outputs fed back),
  weighted 0.8^j (EAGLE-3);
- mtp: cross-entropy of head i on the token i + 1 places after the bonus token.

The draft vocabulary is the `draft_vocab` most frequent labels. Every `checkpoint_every` optimizer
steps the head, the optimizer and the position in the schedule are written atomically to
`state_path`; a run given the same path resumes from there.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from specscope.engine.heads.checkpoint import build_head
from specscope.engine.heads.common import HeadConfig, d2t_from_ids, default_aux_ids, target_final_norm, target_head_rows
from specscope.engine.heads.data import HeadData
from specscope.errors import SpecscopeError


@dataclass
class TrainSettings:
    kind: str = "eagle"
    epochs: int = 8
    max_steps: int = 0  # stop after this many optimizer steps (0 = epochs decide); the schedule ends there
    lr: float = 1e-3
    draft_vocab: int = 4096  # 0 = the full vocabulary
    ttt_steps: int = 3  # eagle3
    num_mtp: int = 3  # mtp heads (draft positions)
    noise: float = 0.05  # eagle: uniform noise on input features
    cls_weight: float = 0.3  # eagle: weight of the token loss next to the feature loss
    seqs_per_step: int = 2  # sequences per optimizer step
    max_seq: int = 1024  # longest training sequence (tokens); longer ones keep their last max_seq
    checkpoint_every: int = 20  # optimizer steps between resumable checkpoints
    seed: int = 0


def choose_draft_vocab(data: HeadData, vocab_size: int, size: int) -> torch.Tensor:
    """The `size` most frequent labels (target greedy choices), sorted; all ids when size is 0 or >= vocab."""
    if not size or size >= vocab_size:
        return torch.arange(vocab_size)
    counts = torch.zeros(vocab_size, dtype=torch.long)
    for labels in data.labels:
        counts += torch.bincount(labels, minlength=vocab_size)
    for tokens in data.tokens:  # tie-break towards tokens that appear at all
        counts += (torch.bincount(tokens, minlength=vocab_size) > 0).long()
    return torch.topk(counts, size).indices.sort().values


def vocab_coverage(data: HeadData, ids: torch.Tensor, vocab_size: int) -> float:
    inside = torch.zeros(vocab_size, dtype=torch.bool)
    inside[ids] = True
    hits = sum(int(inside[y].sum()) for y in data.labels)
    return hits / max(sum(len(y) for y in data.labels), 1)


def make_head(target, settings: TrainSettings, ids: torch.Tensor):
    """A freshly initialised head of `settings.kind` for `target` with draft vocabulary `ids`."""
    tc = target.config
    extra = {}
    if settings.kind == "eagle3":
        extra["aux_layer_ids"] = default_aux_ids(tc.num_layers)
    if settings.kind == "mtp":
        extra["num_mtp"] = settings.num_mtp
    if settings.kind == "eagle":
        extra["fc_bias"] = True
    cfg = HeadConfig.for_target(settings.kind, tc, draft_vocab_size=len(ids), **extra)
    torch.manual_seed(settings.seed)
    head = build_head(cfg)
    reduced = len(ids) < tc.vocab_size
    if settings.kind == "eagle3":
        with torch.no_grad():
            head.lm_head.weight.copy_(target_head_rows(target, ids))
            head.norm.weight.copy_(target_final_norm(target))
            head.d2t.copy_(d2t_from_ids(ids))
            head.t2d.zero_()
            head.t2d[ids] = True
    elif reduced:
        head.d2t = d2t_from_ids(ids)
    if settings.kind == "mtp":
        with torch.no_grad():
            for block in head.heads:
                block.norm.weight.copy_(target_final_norm(target))
    return head.float()


class _Batches:
    """Per-sequence tensors prepared once: the features the kind reads, next-token embeddings, labels.

    Kept in float16 (the data's precision; a few GB for a large corpus) and widened per step; EAGLE
    and MTP read the last hidden state, EAGLE-3 the fused layer features, so only those are kept.
    """

    def __init__(self, target, data: HeadData, ids: torch.Tensor, max_seq: int, kind: str):
        index = torch.full((target.config.vocab_size,), -100, dtype=torch.long)
        index[ids] = torch.arange(len(ids))
        self.items = []
        for tokens, hidden, aux, labels in zip(data.tokens, data.hidden, data.aux, data.labels):
            n = len(tokens)
            start = max(0, n - max_seq)
            tokens, hidden, aux, labels = tokens[start:], hidden[start:], aux[start:], labels[start:]
            if len(tokens) < 3:
                continue
            with torch.no_grad():
                emb = target.embed(tokens[1:].to(target.device)).half().cpu()
            features = (None, aux.half()) if kind == "eagle3" else (hidden.half(), None)
            self.items.append((*features, emb, index[labels]))

    def item(self, i: int):
        """(hidden, aux, emb, labels) of sequence i, floating tensors as float32 (absent features: None)."""
        return tuple(t.float() if t is not None and t.is_floating_point() else t for t in self.items[i])

    def __len__(self):
        return len(self.items)


def sequence_loss(head, item, settings: TrainSettings, lm_rows):
    """(loss, {metric: value}) for one sequence."""
    hidden, aux, emb, labels = item
    kind = settings.kind
    if kind == "eagle":
        pred = head.train_forward(hidden[:-1], emb, steps=1, noise=settings.noise)[0]
        feat_loss = F.smooth_l1_loss(pred, hidden[1:])
        logits = pred @ lm_rows.t()
        ce = F.cross_entropy(logits, labels[1:], ignore_index=-100)
        acc = _accuracy(logits, labels[1:])
        return feat_loss + settings.cls_weight * ce, {"ce": float(ce.detach()), "feat": float(feat_loss.detach()), "acc1": acc}
    if kind == "eagle3":
        outs = head.train_forward(aux[:-1], emb, steps=settings.ttt_steps)
        total, metrics = 0.0, {}
        for j, normed in enumerate(outs):
            logits = head.lm_head(normed[j:])
            target = labels[1:][j:]
            ce = F.cross_entropy(logits, target, ignore_index=-100)
            total = total + (0.8 ** j) * ce
            metrics[f"acc{j + 1}"] = _accuracy(logits, target)
        metrics["ce"] = float(total.detach())
        return total, metrics
    # mtp
    outs = head(hidden[:-1], emb)  # [T, K, H]
    T = outs.shape[0]
    total, metrics = 0.0, {}
    for i in range(outs.shape[1]):
        if T - i <= 0:
            break
        logits = outs[: T - i, i] @ lm_rows.t()
        target = labels[1 + i :]
        ce = F.cross_entropy(logits, target, ignore_index=-100)
        total = total + ce
        metrics[f"acc{i + 1}"] = _accuracy(logits, target)
    metrics["ce"] = float(total.detach())
    return total, metrics


def _accuracy(logits, labels) -> float:
    valid = labels >= 0
    if not bool(valid.any()):
        return 0.0
    return float((logits.argmax(-1)[valid] == labels[valid]).float().mean())


def _save_state(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train_head(target, data: HeadData, settings: TrainSettings, state_path: Path | None = None, progress=None,
               init=None):
    """Train a head of `settings.kind` on `data`; returns (head, summary dict).

    `progress(step, total, metrics)` is called after every optimizer step. `init`: a loaded head of
    the same kind to continue from (its weights and draft vocabulary) instead of a fresh one.
    """
    if settings.kind not in ("eagle", "eagle3", "mtp"):
        raise SpecscopeError(f"--kind {settings.kind}: choose eagle, eagle3 or mtp")
    if init is not None and init.kind != settings.kind:
        raise SpecscopeError(f"--init: is an {init.kind} head, not {settings.kind}")
    if init is not None and getattr(init, "d2t", None) is not None:
        from specscope.engine.heads.common import draft_token_ids

        ids = draft_token_ids(init.d2t.cpu(), target.config.vocab_size)
    else:
        ids = choose_draft_vocab(data, target.config.vocab_size, settings.draft_vocab)
    head = make_head(target, settings, ids)
    if init is not None:
        if init.kind == "mtp" and len(init.heads) != len(head.heads):
            raise SpecscopeError(f"--init has {len(init.heads)} MTP heads, --num-mtp asks for {len(head.heads)}")
        head.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in init.state_dict().items()})
    lm_rows = target_head_rows(target, ids).cpu() if settings.kind != "eagle3" else None
    batches = _Batches(target, data, ids, settings.max_seq, settings.kind)
    if not len(batches):
        raise SpecscopeError("no training sequences (every prompt failed or is too short)")
    steps_per_epoch = math.ceil(len(batches) / settings.seqs_per_step)
    total = steps_per_epoch * settings.epochs
    if settings.max_steps:
        total = min(total, settings.max_steps)
    opt = torch.optim.AdamW(head.parameters(), lr=settings.lr, betas=(0.9, 0.95), weight_decay=0.0)
    warmup = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    step, history = 0, []
    if state_path is not None and Path(state_path).is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        if state.get("settings") != asdict(settings):
            raise SpecscopeError(f"{state_path}: a training state with other settings exists; "
                                 "use the same settings to resume, or delete it to start over")
        head.load_state_dict(state["head"])
        if state.get("d2t") is not None and settings.kind != "eagle3":
            head.d2t = state["d2t"]
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step, history = state["step"], state.get("history", [])
    head.train()
    started = time.perf_counter()
    while step < total:
        epoch, within = divmod(step, steps_per_epoch)
        order = torch.randperm(len(batches), generator=torch.Generator().manual_seed(settings.seed + epoch))
        picks = order[within * settings.seqs_per_step : (within + 1) * settings.seqs_per_step].tolist()
        opt.zero_grad(set_to_none=True)
        agg: dict[str, float] = {}
        for i in picks:
            loss, metrics = sequence_loss(head, batches.item(i), settings, lm_rows)
            (loss / len(picks)).backward()
            for k, v in metrics.items():
                agg[k] = agg.get(k, 0.0) + v / len(picks)
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        history.append({"step": step, **{k: round(v, 4) for k, v in agg.items()}})
        if progress is not None:
            progress(step, total, agg)
        if state_path is not None and (step % settings.checkpoint_every == 0 or step == total):
            _save_state(Path(state_path), {"settings": asdict(settings), "head": head.state_dict(),
                                           "d2t": getattr(head, "d2t", None), "opt": opt.state_dict(),
                                           "sched": sched.state_dict(), "step": step, "history": history})
    head.eval()
    last = history[-steps_per_epoch:] if history else []
    summary = {
        "steps": total, "sequences": len(batches), "tokens": sum(len(it[3]) for it in batches.items),
        "draft_vocab": len(ids), "draft_vocab_coverage": round(vocab_coverage(data, ids, target.config.vocab_size), 4),
        "seconds_this_run": round(time.perf_counter() - started, 1),
        "last_epoch": {k: round(sum(h.get(k, 0.0) for h in last) / max(len(last), 1), 4)
                       for k in (last[-1].keys() if last else []) if k != "step"},
    }
    return head, summary
