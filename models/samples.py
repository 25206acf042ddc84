"""Fixed, hand-written example texts: the export parity set and a labelled smoke set.

The smoke set lets the tiny test model train before (or without) the shipped corpus.
"""

from __future__ import annotations

# Varied lengths, casing, cashtags, numbers and non-ASCII so that padding and truncation are exercised.
PARITY_SENTENCES = (
    "Apple beats earnings estimates as iPhone revenue jumps 12%",
    "$TSLA slides after deliveries miss; analysts cut targets",
    "Fed holds rates steady, signals two cuts later this year",
    "ok",
    "The board of directors will hold its annual general meeting on 14 May 2026 at the company's "
    "headquarters; shareholders of record as of 1 April may vote, and proxy materials are available "
    "on the investor relations website together with the audited accounts for the financial year.",
    "Regulator fines bank €2.1bn over anti-money-laundering failures",
    "Not bad at all: margins held up despite the weaker yen",
    "Merger talks between the two chipmakers collapse",
)

SMOKE_RECORDS = (
    {
        "text": "Apple beats earnings estimates as iPhone revenue jumps",
        "sentiment": "positive",
        "topic": "earnings",
    },
    {
        "text": "Retailer misses quarterly profit forecast, shares sink",
        "sentiment": "negative",
        "topic": "earnings",
    },
    {
        "text": "Company to report third-quarter results on Thursday",
        "sentiment": "neutral",
        "topic": "earnings",
    },
    {"text": "Chipmaker agrees to buy rival in $20bn deal", "sentiment": "positive", "topic": "m&a"},
    {"text": "Merger talks between the two lenders collapse", "sentiment": "negative", "topic": "m&a"},
    {"text": "Bank confirms it is reviewing strategic options", "sentiment": "neutral", "topic": "m&a"},
    {"text": "Fed cuts rates, stocks rally on cheaper money", "sentiment": "positive", "topic": "macro"},
    {
        "text": "Inflation surges to a 40-year high, recession fears grow",
        "sentiment": "negative",
        "topic": "macro",
    },
    {"text": "Central bank meeting minutes due at 2pm", "sentiment": "neutral", "topic": "macro"},
    {
        "text": "Court dismisses antitrust lawsuit against the insurer",
        "sentiment": "positive",
        "topic": "legal",
    },
    {
        "text": "Regulator fines bank over money-laundering failures",
        "sentiment": "negative",
        "topic": "legal",
    },
    {"text": "SEC publishes new disclosure rule for comment", "sentiment": "neutral", "topic": "legal"},
    {"text": "Analyst upgrades $NVDA to buy, raises target", "sentiment": "positive", "topic": "analyst"},
    {"text": "Broker downgrades airline to sell on weak demand", "sentiment": "negative", "topic": "analyst"},
    {"text": "Analyst initiates coverage of the utility at hold", "sentiment": "neutral", "topic": "analyst"},
    {"text": "Markets hit record highs as tech leads gains", "sentiment": "positive", "topic": "markets"},
    {"text": "Stocks tumble as bond yields spike", "sentiment": "negative", "topic": "markets"},
    {"text": "Trading volumes were average on Tuesday", "sentiment": "neutral", "topic": "markets"},
)
