"""Ticker extraction: cashtags ($AAPL) and known company names -> symbols.

Names come from the offline index lists shipped in PyPI `pytickersymbols` (S&P 500, NASDAQ 100,
DOW JONES), loaded once per process on first use.
"""

from __future__ import annotations

import re
from functools import lru_cache

_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,5}(?:\.[A-Za-z])?)\b")
_LEGAL_SUFFIX = re.compile(
    r"[,.]?\s+(inc|incorporated|corp|corporation|co|company|plc|ltd|limited|group|holdings?|"
    r"class [abc]|the)\.?$",
    re.IGNORECASE,
)
_US_INDICES = ("S&P 500", "NASDAQ 100", "DOW JONES")
# Everyday names the index lists spell differently.
_ALIASES = {
    "Google": "GOOGL", "Alphabet": "GOOGL", "Meta": "META", "Facebook": "META", "JPMorgan": "JPM",
    "Goldman Sachs": "GS", "Morgan Stanley": "MS", "Berkshire Hathaway": "BRK.B", "Coca-Cola": "KO",
    "Walmart": "WMT", "Exxon": "XOM", "ExxonMobil": "XOM", "Nvidia": "NVDA", "Tesla": "TSLA",
}  # fmt: skip
# Short names that are also ordinary English words are not matched without a cashtag.
_AMBIGUOUS = {"Target", "Apple Hospitality", "Gap", "Ball", "Visa", "Block", "Match", "Fox", "News", "Best"}


def _short_name(name: str) -> str:
    previous = None
    name = name.strip()
    while previous != name:
        previous, name = name, _LEGAL_SUFFIX.sub("", name).strip()
    return name


@lru_cache(maxsize=1)
def company_names() -> dict[str, str]:
    """Company short name -> primary US symbol."""
    from pytickersymbols import PyTickerSymbols

    names: dict[str, str] = {}
    catalogue = PyTickerSymbols()
    for index in _US_INDICES:
        for stock in catalogue.get_stocks_by_index(index):
            short = _short_name(stock["name"])
            if len(short) >= 3 and short not in _AMBIGUOUS:
                names.setdefault(short, stock["symbol"].upper())
    names.update(_ALIASES)
    return names


@lru_cache(maxsize=1)
def _name_pattern() -> re.Pattern[str]:
    alternatives = sorted(company_names(), key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(a) for a in alternatives) + r")(?:'s)?\b")


def extract_tickers(text: str, known: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Symbols mentioned in text (cashtags first, then company names), de-duplicated, in order."""
    found = [t.upper() for t in known]
    found += [m.group(1).upper() for m in _CASHTAG.finditer(text)]
    names = company_names()
    found += [names[m.group(1)] for m in _name_pattern().finditer(text)]
    return tuple(dict.fromkeys(found))
