"""Held-out evaluation of both heads, and the TF-IDF + logistic-regression baseline beside it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from models.base import SENTIMENTS, Classifier, Prediction
from models.calibration import (
    estimate_prior,
    expected_calibration_error,
    format_prior,
    prior_weights,
    reweight,
)
from models.datasets import Record

# Confidence floors reported for negative calls: what counting only sure calls buys in precision.
NEGATIVE_CONFIDENCE_FLOORS = (0.6, 0.8, 0.9)


def head_metrics(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    labels = [lab for lab in labels if lab in set(y_true) | set(y_pred)]
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": {
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, lab in enumerate(labels)
        },
        "confusion": {
            "labels": list(labels),
            "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
    }


def score_predictions(
    records: Sequence[Record],
    sentiments: Sequence[str],
    topics: Sequence[str | None],
    topic_labels: Sequence[str],
) -> dict[str, Any]:
    """Metrics of both heads; the topic head is scored on the records that have a topic label."""
    result = {"sentiment": head_metrics([r["sentiment"] for r in records], sentiments, SENTIMENTS)}
    pairs = [(r["topic"], t) for r, t in zip(records, topics, strict=True) if r.get("topic")]
    if pairs:
        result["topic"] = head_metrics([a for a, _ in pairs], [b for _, b in pairs], topic_labels)
    return result


def negative_by_confidence(
    y_true: Sequence[str], y_pred: Sequence[str], confidence: Sequence[float]
) -> list[dict[str, float]]:
    """Precision and recall of the negative calls whose confidence reaches each floor."""
    true_negatives = sum(label == "negative" for label in y_true)
    rows = []
    for floor in NEGATIVE_CONFIDENCE_FLOORS:
        kept = [
            t for t, p, c in zip(y_true, y_pred, confidence, strict=True) if p == "negative" and c >= floor
        ]
        correct = sum(t == "negative" for t in kept)
        rows.append(
            {
                "min_confidence": floor,
                "calls": len(kept),
                "precision": correct / len(kept) if kept else 0.0,
                "recall": correct / true_negatives if true_negatives else 0.0,
            }
        )
    return rows


def predict_all(clf: Classifier, texts: Sequence[str], batch_size: int = 64) -> list[Prediction]:
    """Predictions for every text, in order, in batches of ``batch_size``."""
    preds: list[Prediction] = []
    for i in range(0, len(texts), batch_size):
        preds += clf.predict_batch(list(texts[i : i + batch_size]))
    return preds


def adapt_to_stream(
    preds: Sequence[Prediction], model_prior: Sequence[float]
) -> tuple[np.ndarray, list[Prediction]]:
    """The stream's sentiment prior estimated from the predictions alone, and the re-weighted predictions."""
    probs = np.array([[p.p_negative, p.p_neutral, p.p_positive] for p in preds], dtype=np.float64)
    prior = estimate_prior(probs, model_prior)
    adjusted = reweight(probs, prior_weights(prior, model_prior))
    return prior, [
        replace(
            p,
            sentiment=SENTIMENTS[int(row.argmax())],
            p_negative=float(row[0]),
            p_neutral=float(row[1]),
            p_positive=float(row[2]),
        )
        for p, row in zip(preds, adjusted, strict=True)
    ]


def evaluate_classifier(
    clf: Classifier,
    records: Sequence[Record],
    batch_size: int = 64,
    model_prior: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Run a classifier over records and score both heads.

    With ``model_prior`` the sentiment probabilities are first moved to the prior estimated from
    the records' texts alone (their labels are not used): how a stream-adapted model would score.
    """
    preds = predict_all(clf, [r["text"] for r in records], batch_size)
    stream_prior = None
    if model_prior is not None:
        stream_prior, preds = adapt_to_stream(preds, model_prior)
    topic_labels = getattr(clf, "topics", sorted({p.topic for p in preds}))
    y_true, y_pred = [r["sentiment"] for r in records], [p.sentiment for p in preds]
    confidence = [p.confidence for p in preds]
    result = score_predictions(records, y_pred, [p.topic for p in preds], topic_labels)
    result["sentiment"]["ece"] = expected_calibration_error(
        confidence, [t == p for t, p in zip(y_true, y_pred, strict=True)]
    )
    result["sentiment"]["negative_by_confidence"] = negative_by_confidence(y_true, y_pred, confidence)
    if "topic" in result:
        pairs = [(p, r) for p, r in zip(preds, records, strict=True) if r.get("topic")]
        result["topic"]["ece"] = expected_calibration_error(
            [p.topic_prob for p, _ in pairs], [p.topic == r["topic"] for p, r in pairs]
        )
    if stream_prior is not None:
        result["sentiment"]["estimated_prior"] = format_prior(stream_prior, SENTIMENTS)
    return result


def tfidf_baseline(train: Sequence[Record], test: Sequence[Record], seed: int = 13) -> dict[str, Any]:
    """TF-IDF (word 1-2 grams + char 2-5 grams) + logistic regression per head, trained on ``train``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    def fit_predict(rows: Sequence[Record], key: str) -> list[str]:
        features = make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
        )
        clf = make_pipeline(features, LogisticRegression(max_iter=2000, C=10.0, random_state=seed))
        clf.fit([r["text"] for r in rows], [r[key] for r in rows])
        return list(clf.predict([r["text"] for r in test]))

    topic_train = [r for r in train if r.get("topic")]
    topics = fit_predict(topic_train, "topic") if topic_train else [None] * len(test)
    topic_labels = sorted({r["topic"] for r in topic_train})
    return score_predictions(test, fit_predict(train, "sentiment"), topics, topic_labels)


def summary(metrics: dict[str, Any]) -> dict[str, float]:
    """The headline figures: sentiment accuracy + macro-F1, topic accuracy + macro-F1."""
    out = {}
    for head in ("sentiment", "topic"):
        if head in metrics:
            out[f"{head}_accuracy"] = round(metrics[head]["accuracy"], 4)
            out[f"{head}_macro_f1"] = round(metrics[head]["macro_f1"], 4)
            if "ece" in metrics[head]:
                out[f"{head}_ece"] = round(metrics[head]["ece"], 4)
    return out


def to_markdown(report: dict[str, Any]) -> str:
    """Render an evaluation report (model + optional baseline) as Markdown tables."""
    lines = [f"# Evaluation of {report.get('model_version', '?')} on `{report.get('split', '?')}`", ""]
    lines += [
        "| system | sentiment acc | sentiment macro-F1 | topic acc | topic macro-F1 |",
        "|---|---|---|---|---|",
    ]
    for name, key in (("model", "model"), ("TF-IDF + LR baseline", "baseline")):
        if key in report:
            s = summary(report[key])
            lines.append(
                f"| {name} | {s.get('sentiment_accuracy', '-')} | {s.get('sentiment_macro_f1', '-')} | "
                f"{s.get('topic_accuracy', '-')} | {s.get('topic_macro_f1', '-')} |"
            )
    for head, metrics in report["model"].items():
        lines += [
            "",
            f"## {head} head (model)",
            "",
            "| class | precision | recall | F1 | support |",
            "|---|---|---|---|---|",
        ]
        for lab, m in metrics["per_class"].items():
            lines.append(
                f"| {lab} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
            )
        labels = metrics["confusion"]["labels"]
        lines += ["", "Confusion matrix (rows = true, columns = predicted):", ""]
        lines += ["| true \\ pred | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        for lab, row in zip(labels, metrics["confusion"]["matrix"], strict=True):
            lines.append(f"| {lab} | " + " | ".join(str(v) for v in row) + " |")
        if "negative_by_confidence" in metrics:
            lines += ["", "Negative calls at or above a confidence floor:", ""]
            lines += ["| min confidence | calls | precision | recall |", "|---|---|---|---|"]
            lines += [
                f"| {row['min_confidence']} | {row['calls']} | {row['precision']:.3f} | {row['recall']:.3f} |"
                for row in metrics["negative_by_confidence"]
            ]
    return "\n".join(lines) + "\n"
