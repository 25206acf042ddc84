"""The training loop on a tiny encoder: refit without validation, regularisers, class weights."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig

from models.base import SENTIMENTS
from models.bases import minilm_folder
from models.modeldir import ModelDir, content_hash
from models.network import TwoHeadModel
from models.samples import SMOKE_RECORDS
from models.training import TrainConfig, _sentiment_weights, build_tiny_model, fit, topics_of


def _tiny() -> tuple[TwoHeadModel, object, list[str]]:
    tokenizer = AutoTokenizer.from_pretrained(minilm_folder(), use_fast=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    topics = topics_of(SMOKE_RECORDS)
    return TwoHeadModel.from_config(config, len(SENTIMENTS), len(topics)), tokenizer, topics


def test_refit_without_validation_runs_exactly_the_epochs() -> None:
    model, tokenizer, topics = _tiny()
    cfg = TrainConfig(epochs=2, batch_size=8, max_length=24, freeze_embeddings=True, token_dropout=0.2)
    before = model.encoder.get_input_embeddings().weight.detach().clone()
    result = fit(model, tokenizer, list(SMOKE_RECORDS), [], topics, cfg, progress=False)
    assert result["epochs_run"] == 2 and result["best_epoch"] == 2
    assert torch.equal(before, model.encoder.get_input_embeddings().weight)


def test_rows_without_topic_train_the_sentiment_head_only() -> None:
    model, tokenizer, topics = _tiny()
    rows = [{**r, "topic": None} for r in SMOKE_RECORDS]
    result = fit(
        model, tokenizer, rows, list(SMOKE_RECORDS)[:6], topics, TrainConfig(epochs=1), progress=False
    )
    assert result["history"][0]["sentiment_accuracy"] >= 0.0


def test_class_weights_favour_the_rare_class() -> None:
    w = _sentiment_weights([([1], 0, 0)] * 8 + [([1], 1, 0)] * 8 + [([1], 2, 0)] * 2)
    assert w[2] > w[0] and abs(float(w.mean()) - 1.0) < 1e-6


def test_build_tiny_model_is_a_complete_directory(tmp_path: Path) -> None:
    path = build_tiny_model(tmp_path / "tiny", records=list(SMOKE_RECORDS))
    md = ModelDir(path)
    assert md.model_version == content_hash(path)
    assert md.meta["base_model"].startswith("tiny-bert")
