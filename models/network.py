"""The two-head network: a BERT-family encoder, mean pooling, a sentiment head and a topic head."""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel, PretrainedConfig


class TwoHeadModel(nn.Module):
    """Encoder + masked mean pooling + linear sentiment and topic heads (logits out)."""

    def __init__(self, encoder: nn.Module, n_sentiments: int, n_topics: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.sentiment_head = nn.Linear(hidden, n_sentiments)
        self.topic_head = nn.Linear(hidden, n_topics)

    @classmethod
    def from_config(cls, config: PretrainedConfig, n_sentiments: int, n_topics: int) -> TwoHeadModel:
        """Randomly initialised model of the given encoder config (weights loaded afterwards)."""
        return cls(AutoModel.from_config(config, attn_implementation="eager"), n_sentiments, n_topics)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (sentiment_logits, topic_logits), each [batch, n_labels]."""
        # Explicit zeros: the encoder's buffered token_type_ids do not trace well with dynamic axes.
        hidden = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(input_ids),
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        pooled = self.dropout(pooled)
        return self.sentiment_head(pooled), self.topic_head(pooled)
