"""The benchmark's chart: throughput and latency against batch size, workers and offered load."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_chart(result: dict[str, Any], path: Path) -> Path:
    """Throughput and latency vs batch size (saturating load) and vs offered load, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = result["points"]
    workers = result["e2e_workers"]
    sweep = sorted(
        (p for p in points if not p["offered_docs_per_s"] and p["workers"] in (1, workers)
         and (p["workers"] == workers or p["batch_size"] == 1)),
        key=lambda p: p["batch_size"],
    )  # fmt: skip
    loads = sorted((p for p in points if p["offered_docs_per_s"]), key=lambda p: p["offered_docs_per_s"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    sizes = [p["batch_size"] for p in sweep]
    left.plot(sizes, [p["docs_per_s"] for p in sweep], "o-", color="tab:blue", label="e2e docs/s")
    left.axhline(
        result["ceiling_docs_per_s"], color="tab:blue", ls=":", label=f"ceiling @ {result['batch_size']}"
    )
    left.set_xscale("log", base=2)
    left.set_xlabel(f"max batch size (saturating burst; {workers} worker(s), batch 1: one worker)")
    left.set_ylabel("documents / s", color="tab:blue")
    twin = left.twinx()
    twin.plot(sizes, [p["latency_ms"]["p99"] for p in sweep], "s--", color="tab:red", label="p99 latency")
    twin.set_ylabel("p99 publish->stored ms (queueing incl.)", color="tab:red")
    left.set_title("throughput vs batch size")
    left.legend(loc="lower right", fontsize=8)
    offered = [p["offered_docs_per_s"] for p in loads]
    right.plot(offered, [p["docs_per_s"] for p in loads], "o-", color="tab:blue", label="achieved docs/s")
    right.plot(offered, offered, ":", color="grey", label="offered")
    right.set_xlabel(f"offered load, docs/s (peak {result['e2e_docs_per_s']:.0f})")
    right.set_ylabel("documents / s", color="tab:blue")
    twin = right.twinx()
    for key, style, colour in (("p50", "s--", "tab:green"), ("p99", "^--", "tab:orange")):
        twin.plot(offered, [p["latency_ms"][key] for p in loads], style, color=colour, label=f"{key} latency")
    twin.axhline(result["latency_bound_ms"], color="tab:red", ls=":", label="target p99 bound")
    twin.set_ylabel("publish->stored ms")
    twin.legend(loc="upper left", fontsize=8)
    right.legend(loc="lower right", fontsize=8)
    right.set_title(f"throughput and latency vs offered load (batch {result['batch_size']})")
    ratios = result["ratios"]
    fig.suptitle(
        f"finpulse e2e on {result['backend']}: {result['e2e_docs_per_s']:.0f} docs/s, "
        f"{ratios['e2e_over_ceiling']:.0%} of ceiling, {ratios['e2e_over_batch1']:.1f}x batch-1",
        fontsize=11,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------ A/B runs
