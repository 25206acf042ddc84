"""Slot vocabularies for the authored corpus: companies, sectors, institutions, numbers.

The company list is a frozen snapshot (`companies.csv`) so generation does not change when an
upstream package updates; `refresh_companies` rebuilds it from `pytickersymbols` plus the
hand-written US large caps below.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

COMPANIES_CSV = Path(__file__).with_name("companies.csv")


@dataclass(frozen=True, slots=True)
class Company:
    """A company as used in a template: short display name, ticker (no $) and coarse sector."""

    name: str
    ticker: str
    sector: str


# Hand-written US large caps (short names as headlines use them). Sector keys match SECTORS.
US_LARGE_CAPS: tuple[tuple[str, str, str], ...] = (
    ("Apple", "AAPL", "tech"),
    ("Microsoft", "MSFT", "tech"),
    ("Alphabet", "GOOGL", "tech"),
    ("Amazon", "AMZN", "retail"),
    ("Meta Platforms", "META", "media"),
    ("Nvidia", "NVDA", "semis"),
    ("Tesla", "TSLA", "auto"),
    ("Broadcom", "AVGO", "semis"),
    ("Oracle", "ORCL", "tech"),
    ("Salesforce", "CRM", "tech"),
    ("Adobe", "ADBE", "tech"),
    ("Intel", "INTC", "semis"),
    ("AMD", "AMD", "semis"),
    ("Qualcomm", "QCOM", "semis"),
    ("Micron", "MU", "semis"),
    ("Cisco", "CSCO", "tech"),
    ("IBM", "IBM", "tech"),
    ("Netflix", "NFLX", "media"),
    ("Disney", "DIS", "media"),
    ("Comcast", "CMCSA", "media"),
    ("JPMorgan Chase", "JPM", "bank"),
    ("Bank of America", "BAC", "bank"),
    ("Wells Fargo", "WFC", "bank"),
    ("Citigroup", "C", "bank"),
    ("Goldman Sachs", "GS", "bank"),
    ("Morgan Stanley", "MS", "bank"),
    ("Charles Schwab", "SCHW", "bank"),
    ("US Bancorp", "USB", "bank"),
    ("PNC Financial", "PNC", "bank"),
    ("Capital One", "COF", "bank"),
    ("American Express", "AXP", "bank"),
    ("Visa", "V", "bank"),
    ("Mastercard", "MA", "bank"),
    ("PayPal", "PYPL", "bank"),
    ("BlackRock", "BLK", "bank"),
    ("Berkshire Hathaway", "BRK.B", "insurance"),
    ("UnitedHealth", "UNH", "health"),
    ("Johnson & Johnson", "JNJ", "pharma"),
    ("Pfizer", "PFE", "pharma"),
    ("Merck", "MRK", "pharma"),
    ("Eli Lilly", "LLY", "pharma"),
    ("AbbVie", "ABBV", "pharma"),
    ("Bristol-Myers Squibb", "BMY", "pharma"),
    ("Amgen", "AMGN", "pharma"),
    ("Gilead", "GILD", "pharma"),
    ("Moderna", "MRNA", "pharma"),
    ("Abbott", "ABT", "health"),
    ("Medtronic", "MDT", "health"),
    ("CVS Health", "CVS", "health"),
    ("Exxon Mobil", "XOM", "energy"),
    ("Chevron", "CVX", "energy"),
    ("ConocoPhillips", "COP", "energy"),
    ("Occidental", "OXY", "energy"),
    ("Schlumberger", "SLB", "energy"),
    ("NextEra Energy", "NEE", "utility"),
    ("Duke Energy", "DUK", "utility"),
    ("Walmart", "WMT", "retail"),
    ("Target", "TGT", "retail"),
    ("Costco", "COST", "retail"),
    ("Home Depot", "HD", "retail"),
    ("Lowe's", "LOW", "retail"),
    ("Nike", "NKE", "consumer"),
    ("Starbucks", "SBUX", "consumer"),
    ("McDonald's", "MCD", "consumer"),
    ("Coca-Cola", "KO", "consumer"),
    ("PepsiCo", "PEP", "consumer"),
    ("Procter & Gamble", "PG", "consumer"),
    ("General Motors", "GM", "auto"),
    ("Ford", "F", "auto"),
    ("Rivian", "RIVN", "auto"),
    ("Boeing", "BA", "aerospace"),
    ("Lockheed Martin", "LMT", "aerospace"),
    ("RTX", "RTX", "aerospace"),
    ("General Electric", "GE", "industrial"),
    ("Caterpillar", "CAT", "industrial"),
    ("Deere", "DE", "industrial"),
    ("Honeywell", "HON", "industrial"),
    ("3M", "MMM", "industrial"),
    ("UPS", "UPS", "industrial"),
    ("FedEx", "FDX", "industrial"),
    ("Delta Air Lines", "DAL", "airline"),
    ("United Airlines", "UAL", "airline"),
    ("American Airlines", "AAL", "airline"),
    ("Southwest Airlines", "LUV", "airline"),
    ("AT&T", "T", "telecom"),
    ("Verizon", "VZ", "telecom"),
    ("T-Mobile US", "TMUS", "telecom"),
    ("Uber", "UBER", "tech"),
    ("Airbnb", "ABNB", "consumer"),
    ("Palantir", "PLTR", "tech"),
    ("Snowflake", "SNOW", "tech"),
    ("Coinbase", "COIN", "bank"),
    ("Freeport-McMoRan", "FCX", "materials"),
    ("Dow", "DOW", "materials"),
    ("Prologis", "PLD", "realestate"),
    ("Simon Property", "SPG", "realestate"),
)

# (keyword in a pytickersymbols industry, sector); the first match in this order wins.
_INDUSTRY_SECTORS: tuple[tuple[str, str], ...] = (
    ("airline", "airline"),
    ("semiconductor", "semis"),
    ("bank", "bank"),
    ("insurance", "insurance"),
    ("pharma", "pharma"),
    ("biotech", "pharma"),
    ("health", "health"),
    ("medical", "health"),
    ("automo", "auto"),
    ("auto ", "auto"),
    ("aerospace", "aerospace"),
    ("oil", "energy"),
    ("energy", "energy"),
    ("fossil", "energy"),
    ("petroleum", "energy"),
    ("utilit", "utility"),
    ("telecom", "telecom"),
    ("media", "media"),
    ("software", "tech"),
    ("technology", "tech"),
    ("internet", "tech"),
    ("retail", "retail"),
    ("e-commerce", "retail"),
    ("real estate", "realestate"),
    ("reit", "realestate"),
    ("chemical", "materials"),
    ("mining", "materials"),
    ("materials", "materials"),
    ("metal", "materials"),
    ("financ", "bank"),
    ("investment", "bank"),
    ("food", "consumer"),
    ("beverage", "consumer"),
    ("consumer", "consumer"),
    ("apparel", "consumer"),
    ("industrial", "industrial"),
    ("machinery", "industrial"),
    ("transport", "industrial"),
    ("manufactur", "industrial"),
)

_SUFFIXES = re.compile(
    r"(,?\s+(inc\.?|incorporated|corp\.?|corporation|co\.?|company|plc|p\.l\.c\.|ag|se|sa|s\.a\.|n\.v\.|nv|"
    r"ltd\.?|limited|holdings?|& co\.? kgaa|kgaa|\(the\)|the|class [abc]))+$",
    re.IGNORECASE,
)

_INDICES = ("S&P 500", "NASDAQ 100", "DAX", "FTSE 100", "CAC_40", "EURO STOXX 50", "Switzerland 20")


_NAME_FIXES = {"EBay": "eBay", "News": "News Corp", "Partners": "Partners Group"}


def _short_name(name: str) -> str:
    short = _SUFFIXES.sub("", name.strip()).strip(" ,&")
    return _NAME_FIXES.get(short, short or name.strip())


def _sector(industries: list[str]) -> str:
    joined = " | ".join(industries).lower()
    for keyword, sector in _INDUSTRY_SECTORS:
        if keyword in joined:
            return sector
    return "industrial"


def refresh_companies(path: Path = COMPANIES_CSV) -> int:
    """Rebuild the frozen company snapshot from pytickersymbols + US_LARGE_CAPS; returns the row count."""
    from pytickersymbols import PyTickerSymbols

    rows: dict[str, tuple[str, str, str, str]] = {}
    for name, ticker, sector in US_LARGE_CAPS:
        rows[ticker] = (name, ticker, sector, "hand")
    stocks = PyTickerSymbols()
    for index in _INDICES:
        for stock in stocks.get_stocks_by_index(index):
            symbols = [s.get("yahoo", "") for s in stock.get("symbols", [])]
            plain = [s for s in symbols if s and "." not in s and s.isalpha()]
            ticker = plain[0] if plain else (stock.get("symbol") or "").split(".")[0]
            if not ticker or not ticker.isalpha() or ticker in rows:
                continue
            name = _short_name(stock["name"])
            if any(r[0] == name for r in rows.values()):
                continue
            rows[ticker] = (name, ticker.upper(), _sector(stock.get("industries", [])), "pytickersymbols")
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["name", "ticker", "sector", "source"])
        writer.writerows(sorted(rows.values(), key=lambda r: r[1]))
    return len(rows)


def load_companies(path: Path = COMPANIES_CSV) -> tuple[Company, ...]:
    """Read the frozen company snapshot in file order."""
    with path.open(encoding="utf-8") as fh:
        return tuple(Company(r["name"], r["ticker"], r["sector"]) for r in csv.DictReader(fh))


SECTORS: dict[str, dict[str, tuple[str, ...]]] = {
    "tech": {
        "product": (
            "cloud platform",
            "AI assistant",
            "laptop line",
            "subscription service",
            "software suite",
        ),
        "unit": ("devices", "laptops", "routers", "servers"),
        "defect": ("a battery overheating risk", "a security flaw", "faulty power adapters"),
        "regulator": ("FTC", "European Commission", "DOJ"),
    },
    "semis": {
        "product": ("AI accelerator", "data-center chip", "memory chip", "5G modem"),
        "unit": ("chips", "boards", "graphics cards"),
        "defect": ("a thermal defect", "a firmware flaw"),
        "regulator": ("Commerce Department", "European Commission", "FTC"),
    },
    "bank": {
        "product": ("mobile banking app", "credit card", "wealth platform", "payments service"),
        "unit": ("accounts", "cards"),
        "defect": ("a billing error", "an overdraft glitch"),
        "regulator": ("SEC", "CFPB", "OCC", "Federal Reserve", "FCA"),
    },
    "insurance": {
        "product": ("auto insurance line", "life policy", "reinsurance unit"),
        "unit": ("policies", "claims"),
        "defect": ("a claims-processing error",),
        "regulator": ("the NAIC", "SEC", "FCA"),
    },
    "pharma": {
        "product": ("obesity drug", "cancer therapy", "vaccine", "Alzheimer's drug", "diabetes treatment"),
        "unit": ("lots of tablets", "vials", "inhalers"),
        "defect": ("contamination", "a labelling error", "impurities"),
        "regulator": ("FDA", "European Medicines Agency", "FTC"),
    },
    "health": {
        "product": ("insulin pump", "heart device", "diagnostics test", "Medicare Advantage plan"),
        "unit": ("devices", "pumps", "test kits"),
        "defect": ("a software fault", "a sterility issue"),
        "regulator": ("FDA", "CMS", "DOJ"),
    },
    "auto": {
        "product": ("electric SUV", "pickup truck", "driver-assistance system", "compact EV"),
        "unit": ("vehicles", "SUVs", "sedans", "trucks"),
        "defect": ("faulty airbags", "a brake defect", "a steering issue", "a battery fire risk"),
        "regulator": ("NHTSA", "European Commission", "SEC"),
    },
    "aerospace": {
        "product": ("narrow-body jet", "fighter program", "engine line", "satellite unit"),
        "unit": ("aircraft", "engines"),
        "defect": ("a wiring defect", "a fuel-system issue"),
        "regulator": ("FAA", "DOJ", "SEC"),
    },
    "airline": {
        "product": ("transatlantic routes", "loyalty program", "premium cabin"),
        "unit": ("flights",),
        "defect": ("an engine inspection issue",),
        "regulator": ("FAA", "DOT", "DOJ"),
    },
    "energy": {
        "product": ("LNG project", "offshore field", "shale operations", "refinery"),
        "unit": ("barrels", "cargoes"),
        "defect": ("a pipeline leak",),
        "regulator": ("EPA", "FERC", "SEC"),
    },
    "utility": {
        "product": ("solar portfolio", "grid upgrade", "wind farm"),
        "unit": ("customers",),
        "defect": ("a substation fault",),
        "regulator": ("FERC", "state utility commission", "EPA"),
    },
    "retail": {
        "product": ("same-day delivery service", "store brand", "membership program", "online marketplace"),
        "unit": ("products", "units"),
        "defect": ("a choking hazard", "a fire risk"),
        "regulator": ("FTC", "CPSC", "European Commission"),
    },
    "consumer": {
        "product": ("flagship drink", "sneaker line", "snack brand", "loyalty app"),
        "unit": ("cases", "products", "units"),
        "defect": ("possible contamination", "undeclared allergens"),
        "regulator": ("FDA", "FTC", "European Commission"),
    },
    "industrial": {
        "product": ("turbine business", "logistics network", "automation unit", "heavy equipment line"),
        "unit": ("machines", "units"),
        "defect": ("a hydraulic fault", "a safety defect"),
        "regulator": ("OSHA", "EPA", "DOJ"),
    },
    "telecom": {
        "product": ("5G network", "fiber service", "prepaid plans"),
        "unit": ("routers", "handsets"),
        "defect": ("an overheating issue",),
        "regulator": ("FCC", "DOJ", "Ofcom"),
    },
    "media": {
        "product": ("streaming service", "ad platform", "theme parks", "social app"),
        "unit": ("headsets", "devices"),
        "defect": ("a battery issue",),
        "regulator": ("FTC", "European Commission", "FCC"),
    },
    "materials": {
        "product": ("copper mine", "lithium project", "specialty chemicals unit"),
        "unit": ("tonnes",),
        "defect": ("a contamination issue",),
        "regulator": ("EPA", "European Commission"),
    },
    "realestate": {
        "product": ("office portfolio", "logistics warehouses", "mall portfolio"),
        "unit": ("properties",),
        "defect": ("a fire-safety issue",),
        "regulator": ("SEC", "a state regulator"),
    },
}

VOCAB: dict[str, tuple[str, ...]] = {
    "cb": (
        "the Fed",
        "the ECB",
        "the Bank of England",
        "the Bank of Japan",
        "the Bank of Canada",
        "the RBA",
        "the Swiss National Bank",
        "the Riksbank",
    ),
    "cbshort": ("Fed", "ECB", "BoE", "BoJ", "BoC", "RBA", "SNB"),
    "cbhead": (
        "Fed chair",
        "ECB president",
        "BoE governor",
        "BoJ governor",
        "a Fed governor",
        "the New York Fed president",
        "an ECB board member",
    ),
    "economy": ("US", "euro zone", "UK", "Japanese", "Chinese", "German", "Canadian"),
    "country": ("US", "China", "Germany", "Japan", "the UK", "France", "India", "Brazil", "Canada"),
    "indicator": (
        "inflation",
        "core inflation",
        "consumer prices",
        "producer prices",
        "retail sales",
        "factory output",
        "GDP growth",
        "wage growth",
        "consumer confidence",
    ),
    "index": (
        "S&P 500",
        "Nasdaq",
        "Dow",
        "Stoxx 600",
        "FTSE 100",
        "DAX",
        "Nikkei",
        "Hang Seng",
        "Russell 2000",
        "CAC 40",
    ),
    "idxtag": ("$SPY", "$QQQ", "$IWM", "$DIA", "spx", "ndx", "es_f", "nq"),
    "sector": (
        "tech",
        "bank",
        "energy",
        "healthcare",
        "chip",
        "utilities",
        "retail",
        "airline",
        "biotech",
        "real estate",
        "industrials",
        "consumer staples",
    ),
    "commodity": ("oil", "Brent crude", "gold", "copper", "natural gas", "silver", "wheat", "iron ore"),
    "fx": ("the dollar", "the euro", "the yen", "sterling", "the yuan", "the Swiss franc"),
    "pair": ("EUR/USD", "USD/JPY", "GBP/USD", "AUD/USD", "USD/CNH"),
    "bond": (
        "10-year Treasury",
        "two-year Treasury",
        "30-year Treasury",
        "German 10-year Bund",
        "UK 10-year gilt",
        "Japanese 10-year government bond",
    ),
    "agency": ("Moody's", "S&P Global Ratings", "Fitch", "Fitch Ratings"),
    "activist": (
        "Elliott Management",
        "Starboard Value",
        "Trian Partners",
        "ValueAct Capital",
        "Third Point",
        "Jana Partners",
    ),
    "crypto": ("bitcoin", "ether", "solana", "crypto"),
    "cryptotag": ("$BTC", "$ETH", "$SOL", "btc", "eth"),
    "broker": (
        "Goldman Sachs",
        "Morgan Stanley",
        "JPMorgan",
        "Barclays",
        "UBS",
        "Citi",
        "Jefferies",
        "Bernstein",
        "BofA Securities",
        "Wedbush",
        "Piper Sandler",
        "Evercore ISI",
        "Deutsche Bank",
        "RBC Capital",
        "Wells Fargo",
        "Mizuho",
        "KeyBanc",
    ),
    "rating_up": ("buy", "outperform", "overweight", "strong buy"),
    "rating_mid": ("neutral", "hold", "equal-weight", "market perform", "sector perform"),
    "rating_dn": ("sell", "underperform", "underweight", "reduce"),
    "exec": ("CEO", "chief executive", "CFO", "chief financial officer", "COO", "chairman"),
    "month": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "mon": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"),
    "city": ("Austin", "Dublin", "Singapore", "Ohio", "Texas", "Mexico", "Poland", "Vietnam", "Arizona"),
    "court": (
        "a federal judge",
        "a Delaware court",
        "an appeals court",
        "the EU General Court",
        "a jury in Texas",
        "the Supreme Court",
    ),
    "lawtopic": (
        "antitrust",
        "securities fraud",
        "privacy",
        "patent",
        "consumer protection",
        "anti-money-laundering",
        "price-fixing",
        "data-protection",
    ),
    "union": ("the UAW", "the Teamsters", "machinists", "dockworkers", "pilots", "nurses"),
    "pos_emo": ("🚀", "🚀🚀", "📈", "🔥", "💰", "🙌", "💎🙌", "🟢", "😎", "🤑"),
    "neg_emo": ("📉", "😬", "💀", "🩸", "😭", "🤡", "🔴", "😤", "🥲"),
    "neu_emo": ("👀", "🤔", "📅", "⏳", "🧐"),
    "sarc_emo": ("🙃", "🤡", "😂", "💀", "🫠"),
    "weather": ("rain", "snow", "fog", "a heatwave", "thunderstorms"),
    "team": (
        "the Jets",
        "the Lakers",
        "Arsenal",
        "the Yankees",
        "the Packers",
        "Real Madrid",
        "the Celtics",
        "the Dodgers",
        "Liverpool",
        "the Bruins",
        "the Warriors",
        "Bayern",
        "the Cubs",
        "the Knicks",
    ),
    "food": (
        "coffee",
        "pizza",
        "ramen",
        "tacos",
        "bagels",
        "pho",
        "curry",
        "sushi",
        "burgers",
        "dumplings",
        "pancakes",
        "salad",
    ),
    "show": (
        "the new season",
        "that documentary",
        "the finale",
        "the reboot",
        "the cooking show",
        "the space movie",
        "the true crime series",
    ),
    "thing": (
        "laptop",
        "phone",
        "wifi",
        "train",
        "bus",
        "dishwasher",
        "printer",
        "car",
        "bike",
        "heating",
        "washing machine",
    ),
}
