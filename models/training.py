"""Fine-tune an encoder with a sentiment head and a topic head on CPU; build the tiny test model."""

from __future__ import annotations

import copy
import logging
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm
from transformers import AutoModel, AutoTokenizer, BertConfig, get_linear_schedule_with_warmup

from models.base import SENTIMENTS
from models.bases import minilm_folder, resolve_base
from models.calibration import head_calibration
from models.datasets import Record
from models.evaluation import score_predictions, summary
from models.modeldir import META, ModelDir, load_torch_model, save_model_dir
from models.network import TwoHeadModel

log = logging.getLogger(__name__)

IGNORE = -100


@dataclass
class TrainConfig:
    """Hyper-parameters (defaults: the MiniLM-L6 recipe; `models.bases` holds each base's own)."""

    max_length: int = 64
    epochs: int = 4
    batch_size: int = 32
    lr: float = 8e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    patience: int = 1
    seed: int = 13
    class_weights: bool = True
    topic_loss_weight: float = 1.0
    label_smoothing: float = 0.0
    # regularisers against memorising templates: keep the pretrained word embeddings frozen, and
    # replace a fraction of input tokens with [MASK] (or [UNK]) in training batches
    freeze_embeddings: bool = False
    token_dropout: float = 0.0
    # distillation: weight of the KL term towards the teacher's softened probabilities (rows that
    # carry ``teacher_sentiment`` / ``teacher_topic`` logits), at temperature distill_temperature
    distill_weight: float = 0.0
    distill_temperature: float = 2.0
    threads: int | None = None


def topics_of(records: Sequence[Record]) -> list[str]:
    """Sorted topic labels present in the records; ``["other"]`` when none has a topic."""
    return sorted({r["topic"] for r in records if r.get("topic")}) or ["other"]


def _encode(tokenizer: Any, records: Sequence[Record], topics: list[str], max_length: int) -> list[tuple]:
    """(token ids, sentiment index, topic index, teacher sentiment logits, teacher topic logits) per record.

    A record without a sentiment (unlabelled distillation text) or topic gets IGNORE for that head;
    records without teacher logits get NaN rows, which the distillation loss skips.
    """
    if not records:
        return []
    ids = tokenizer([r["text"] for r in records], truncation=True, max_length=max_length)["input_ids"]
    topic_index = {t: i for i, t in enumerate(topics)}
    nan_s, nan_t = [float("nan")] * len(SENTIMENTS), [float("nan")] * len(topics)
    return [
        (
            seq,
            SENTIMENTS.index(r["sentiment"]) if r.get("sentiment") else IGNORE,
            topic_index.get(r.get("topic") or "", IGNORE),
            r.get("teacher_sentiment") or nan_s,
            r.get("teacher_topic") or nan_t,
        )
        for seq, r in zip(ids, records, strict=True)
    ]


def _batches(
    examples: list[tuple], batch_size: int, pad_id: int, rng: random.Random | None
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Padded batches; when shuffling, examples of similar length share a batch (less padding on CPU)."""
    order = list(range(len(examples)))
    if rng is not None:
        rng.shuffle(order)
        pool = batch_size * 50
        order = [
            i
            for k in range(0, len(order), pool)
            for i in sorted(order[k : k + pool], key=lambda i: len(examples[i][0]))
        ]
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(chunks)
    for chunk in chunks:
        longest = max(len(examples[i][0]) for i in chunk)
        ids = torch.full((len(chunk), longest), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), longest), dtype=torch.long)
        for row, i in enumerate(chunk):
            seq = examples[i][0]
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        yield (
            ids,
            mask,
            torch.tensor([examples[i][1] for i in chunk]),
            torch.tensor([examples[i][2] for i in chunk]),
            torch.tensor(chunk),
            torch.tensor([examples[i][3] for i in chunk], dtype=torch.float32),
            torch.tensor([examples[i][4] for i in chunk], dtype=torch.float32),
        )


def _sentiment_weights(examples: list[tuple]) -> torch.Tensor:
    """Inverse-frequency class weights normalised to mean 1 (sqrt-damped)."""
    counts = Counter(e[1] for e in examples if e[1] != IGNORE)
    labelled = sum(counts.values())
    raw = torch.tensor([(labelled / max(counts.get(i, 0), 1)) ** 0.5 for i in range(len(SENTIMENTS))])
    return raw / raw.mean()


@torch.inference_mode()
def _logits(model: TwoHeadModel, examples: list[tuple], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sentiment, topic) logits of every example in order, in eval mode (the mode is restored)."""
    was_training = model.training
    model.eval()
    sent = topic = None
    for ids, mask, _, _, idx, _, _ in _batches(examples, 64, pad_id, None):
        s, t = model(ids, mask)
        if sent is None:
            sent = torch.zeros(len(examples), s.shape[1])
            topic = torch.zeros(len(examples), t.shape[1])
        sent[idx], topic[idx] = s.float(), t.float()
    model.train(was_training)
    assert sent is not None and topic is not None, "no examples"
    return sent, topic


def _validate(
    model: TwoHeadModel, examples: list[tuple], records: Sequence[Record], topics: list[str], pad_id: int
) -> dict:
    sent, top = _logits(model, examples, pad_id)
    return score_predictions(
        records,
        [SENTIMENTS[int(i)] for i in sent.argmax(dim=1)],
        [topics[int(i)] for i in top.argmax(dim=1)],
        topics,
    )


def _distill_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor | None:
    """KL(teacher || student) at ``temperature`` (scaled by T^2) over rows with teacher logits."""
    rows = ~torch.isnan(teacher).any(dim=1)
    if not rows.any():
        return None
    log_p = torch.log_softmax(student[rows] / temperature, dim=1)
    q = torch.softmax(teacher[rows] / temperature, dim=1)
    return nn.functional.kl_div(log_p, q, reduction="batchmean") * temperature**2


def calibrate(
    model: TwoHeadModel, tokenizer: Any, records: Sequence[Record], topics: list[str], max_length: int
) -> dict[str, Any]:
    """Temperature per head fitted on ``records`` (validation), with ECE before and after."""
    examples = _encode(tokenizer, records, topics, max_length)
    sent, top = _logits(model, examples, int(tokenizer.pad_token_id or 0))
    ys = torch.tensor([e[1] for e in examples])
    yt = torch.tensor([e[2] for e in examples])
    out = {"fitted_on": f"validation ({len(examples)} rows)"}
    for head, logits, labels in (("sentiment", sent, ys), ("topic", top, yt)):
        keep = labels != IGNORE
        if keep.any():
            out[head] = head_calibration(logits[keep].numpy(), labels[keep].numpy())
    return out


def _selection_score(metrics: dict) -> float:
    heads = [metrics[h]["macro_f1"] for h in ("sentiment", "topic") if h in metrics]
    return sum(heads) / len(heads)


def fit(
    model: TwoHeadModel,
    tokenizer: Any,
    train: Sequence[Record],
    validation: Sequence[Record],
    topics: list[str],
    cfg: TrainConfig,
    progress: bool = True,
) -> dict[str, Any]:
    """Train in place with early stopping on validation (mean macro-F1 of the heads); keep the best epoch.

    With no validation records it trains for exactly ``cfg.epochs`` (the refit on train + validation).
    """
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    pad_id = int(tokenizer.pad_token_id or 0)
    train_ex = _encode(tokenizer, train, topics, cfg.max_length)
    val_ex = _encode(tokenizer, validation, topics, cfg.max_length)
    if cfg.freeze_embeddings:
        model.encoder.get_input_embeddings().weight.requires_grad_(False)
    mask_id = tokenizer.mask_token_id if tokenizer.mask_token_id is not None else tokenizer.unk_token_id
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    heads = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    trainable = [(n, p) for n, p in model.encoder.named_parameters() if p.requires_grad]
    no_decay = [p for n, p in trainable if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in trainable if not (n.endswith("bias") or "LayerNorm" in n)]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "lr": cfg.lr, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "lr": cfg.lr, "weight_decay": 0.0},
            {"params": heads, "lr": cfg.head_lr, "weight_decay": 0.0},
        ]
    )
    steps_per_epoch = -(-len(train_ex) // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(total * cfg.warmup_fraction), total)
    weights = _sentiment_weights(train_ex) if cfg.class_weights else None
    sent_loss = nn.CrossEntropyLoss(weight=weights, ignore_index=IGNORE, label_smoothing=cfg.label_smoothing)
    topic_loss = nn.CrossEntropyLoss(ignore_index=IGNORE, label_smoothing=cfg.label_smoothing)
    best_score, best_state, best_epoch, stale = -1.0, None, 0, 0
    history = []
    started = time.monotonic()
    model.train()
    for epoch in range(1, cfg.epochs + 1):
        bar = tqdm(
            _batches(train_ex, cfg.batch_size, pad_id, rng),
            total=steps_per_epoch,
            desc=f"epoch {epoch}/{cfg.epochs}",
            disable=not progress,
            leave=False,
        )
        running = 0.0
        for step, (ids, mask, ys, yt, _, ts, tt) in enumerate(bar, 1):
            if cfg.token_dropout > 0:
                drop = (torch.rand(ids.shape) < cfg.token_dropout) & ~torch.isin(ids, special) & (mask == 1)
                ids = ids.masked_fill(drop, mask_id)
            s_logits, t_logits = model(ids, mask)
            hard = 1.0 - cfg.distill_weight
            loss = s_logits.sum() * 0.0
            if (ys != IGNORE).any():
                loss = loss + hard * sent_loss(s_logits, ys)
            if (yt != IGNORE).any():
                loss = loss + hard * cfg.topic_loss_weight * topic_loss(t_logits, yt)
            if cfg.distill_weight > 0:
                for student, teacher, weight in ((s_logits, ts, 1.0), (t_logits, tt, cfg.topic_loss_weight)):
                    soft = _distill_loss(student, teacher, cfg.distill_temperature)
                    if soft is not None:
                        loss = loss + cfg.distill_weight * weight * soft
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            running += loss.item()
            bar.set_postfix(loss=f"{running / step:.3f}")
        entry = {"epoch": epoch, "train_loss": round(running / steps_per_epoch, 4)}
        if not val_ex:  # no validation split: train for exactly cfg.epochs, keep the last epoch
            history.append(entry)
            best_epoch = epoch
            continue
        metrics = _validate(model, val_ex, validation, topics, pad_id)
        score = _selection_score(metrics)
        history.append({**entry, **summary(metrics)})
        log.info("epoch %d: %s", epoch, history[-1])
        if progress:
            tqdm.write(f"epoch {epoch}: {history[-1]}")
        if score > best_score:
            best_score, best_state, best_epoch, stale = score, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            stale += 1
            if stale > cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return {
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "history": history,
        "seconds": round(time.monotonic() - started, 1),
        "n_train": len(train_ex),
        "n_validation": len(val_ex),
    }


def train(
    train_records: Sequence[Record],
    validation_records: Sequence[Record],
    out_dir: Path,
    cfg: TrainConfig | None = None,
    base: str | Path | None = None,
    data_sources: Sequence[str] = (),
    progress: bool = True,
) -> ModelDir:
    """Fine-tune ``base`` on the records and write a model directory.

    ``base`` is a packaged encoder's name, a transformers folder, a finpulse model directory (to
    continue training the shipped model: its heads are kept when the topic labels match), or None
    for the default encoder.
    """
    cfg = cfg or TrainConfig()
    base, packaged = resolve_base(base)
    torch.manual_seed(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(base, use_fast=True)
    topics = topics_of(train_records)
    if (base / META).exists():
        model = load_torch_model(ModelDir(base)).train()
        known = ModelDir(base).labels["topic"]
        if {r["topic"] for r in train_records if r.get("topic")} <= set(known):
            topics = known  # rows without topics (or with known ones) keep the topic head as it is
        else:
            model.topic_head = nn.Linear(model.topic_head.in_features, len(topics))
    else:
        encoder = AutoModel.from_pretrained(base, attn_implementation="eager")
        model = TwoHeadModel(encoder, len(SENTIMENTS), len(topics))
    result = fit(model, tokenizer, train_records, validation_records, topics, cfg, progress)
    calibration = (
        calibrate(model, tokenizer, validation_records, topics, cfg.max_length) if validation_records else {}
    )
    meta = {
        "base_model": packaged.description if packaged else base.name,
        "base_path": str(base),
        "training": {**asdict(cfg), **{k: v for k, v in result.items()}, "data_sources": list(data_sources)},
        "metrics": {"validation": result["history"][result["best_epoch"] - 1]} if validation_records else {},
        "max_length": cfg.max_length,
        "calibration": calibration,
    }
    return save_model_dir(model, tokenizer, out_dir, topics, meta)


def build_tiny_model(out_dir: Path, records: Sequence[Record] | None = None) -> Path:
    """A tiny randomly initialised 2-layer BERT (hidden 32) on the MiniLM vocab, trained for seconds.

    For tests: it has the real tokenizer, label maps and directory format but no useful accuracy.
    Trains on a slice of the shipped corpus when available, else on the built-in smoke records.
    """
    if records is None:
        try:
            from models.datasets import load_corpus

            records = load_corpus("train")[:512]
        except (ImportError, FileNotFoundError):
            from models.samples import SMOKE_RECORDS

            records = list(SMOKE_RECORDS)
    base = minilm_folder()
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(base, use_fast=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    topics = topics_of(records)
    model = TwoHeadModel.from_config(config, len(SENTIMENTS), len(topics))
    cfg = TrainConfig(max_length=48, epochs=2, batch_size=32, lr=3e-3, head_lr=3e-3, patience=2, seed=0)
    result = fit(model, tokenizer, records, records[:64], topics, cfg, progress=False)
    meta = {
        "base_model": "tiny-bert-2x32 (random init, MiniLM vocab)",
        "training": {**asdict(cfg), **result, "data_sources": ["tiny test slice"]},
        "metrics": {},
        "max_length": cfg.max_length,
        "calibration": calibrate(model, tokenizer, records[:64], topics, cfg.max_length),
    }
    return save_model_dir(model, tokenizer, out_dir, topics, meta).path


def add_teacher_logits(teacher: Path, rows: list[dict]) -> list[dict]:
    """Rows with the teacher model's raw sentiment and topic logits attached (for distillation)."""
    from models.runtime import load_classifier
    from models.settings import ModelSettings

    clf = load_classifier(ModelSettings(dir=teacher))
    if list(getattr(clf, "topics", [])) != sorted(getattr(clf, "topics", [])):
        clf.close()
        raise ValueError("the teacher's topic labels are not in sorted order")
    out = []
    for i in range(0, len(rows), 64):
        chunk = rows[i : i + 64]
        sent, topic = clf.logits([r["text"] for r in chunk])
        out += [
            {**r, "teacher_sentiment": s.tolist(), "teacher_topic": t.tolist()}
            for r, s, t in zip(chunk, sent, topic, strict=True)
        ]
    clf.close()
    return out
