"""The verdicts and the Markdown table of a `make bench` run."""

from __future__ import annotations

import statistics
from typing import Any

# The targets, as ratios to the bare app (throughput, p99) or FastAPI hello (cold, RSS); the
# deployed configuration (Redis + OIDC) also against the in-memory row of the same run.
TARGETS = {"throughput": 0.40, "p99": 3.0, "cold_start": 1.15, "rss": 1.3, "vs_memory": 0.85}
# Display names of the servers, in table order.
NAMES = {
    "bare": "bare ASGI",
    "hello": "FastAPI hello world",
    "tutorial": "FastAPI + cloudevents SDK",
    "function": "this function",
    "function-redis": "this function + REDIS_URL",
    "function-oidc": "this function + REDIS_URL + OIDC",
}
# The row `eventing/` deploys, when the run has it.
DEPLOYED = "function-oidc"


def paired(row: dict[str, Any], base: dict[str, Any], field: str) -> float:
    """`row`'s `field` over `base`'s: the median of the ratios round by round, when both rows
    kept the same rounds (`bench.run.rounds` loads the servers in turn, so round i of each saw
    the same machine), else the ratio of the two rows."""
    mine, theirs = row.get("rounds"), base.get("rounds")
    if not mine or not theirs or len(mine) != len(theirs):
        return float(row[field] / base[field])
    return statistics.median(a[field] / b[field] for a, b in zip(mine, theirs, strict=True))


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    bare, fn, hello = results["bare"], results["function"], results["hello"]
    out = {
        "throughput": round(paired(fn, bare, "rps"), 3),
        "tutorial_throughput": round(paired(results["tutorial"], bare, "rps"), 3),
        # Capacity from CPU time per request: what req/s would be with a core to itself.
        "cpu_capacity": round(1 / paired(fn, bare, "cpu_us"), 3),
        "p99": round(paired(fn, bare, "p99_ms"), 2),
        "cold_start": round(fn["cold_start_ms"] / hello["cold_start_ms"], 3),
        "rss": round(fn["rss_mb"] / hello["rss_mb"], 3),
    }
    out["met"] = {
        "throughput": out["throughput"] >= TARGETS["throughput"],
        "non2xx": fn["non2xx"] == 0 and fn["socket_errors"] == 0,
        "p99": out["p99"] < TARGETS["p99"],
        "cold_start": out["cold_start"] <= TARGETS["cold_start"],
        "rss": out["rss"] <= TARGETS["rss"],
    }
    for key in ("function-redis", DEPLOYED):
        if key in results:
            row = results[key]
            out[key] = {
                "throughput": round(paired(row, bare, "rps"), 3),
                "vs_memory": round(paired(row, fn, "rps"), 3),
                "cpu_vs_memory": round(paired(row, fn, "cpu_us"), 3),
                "p99": round(paired(row, bare, "p99_ms"), 2),
            }
    if DEPLOYED in results:
        row, deployed = results[DEPLOYED], out[DEPLOYED]
        out["met"].update(
            deployed_throughput=deployed["throughput"] >= TARGETS["throughput"],
            deployed_vs_memory=deployed["vs_memory"] >= TARGETS["vs_memory"],
            deployed_non2xx=row["non2xx"] == 0 and row["socket_errors"] == 0,
            deployed_p99=deployed["p99"] < TARGETS["p99"],
        )
    return out


def table(results: dict[str, Any], r: dict[str, Any]) -> str:
    """The Markdown table of one run."""
    bare = results["bare"]
    rows = [
        "| server | req/s | vs bare | CPU µs/req | p50 ms | p99 ms | p99 vs bare | non-2xx "
        "| RSS MiB | cold ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in (k for k in NAMES if k in results):
        x = results[key]
        cold = f"{x['cold_start_ms']:.0f}" if "cold_start_ms" in x else "-"
        cpu = f"{x['cpu_us']} ({x['user_us']} user)" if "user_us" in x else f"{x['cpu_us']}"
        rows.append(
            f"| {NAMES[key]} | {x['rps']} | {round(paired(x, bare, 'rps'), 3):.2f}x | "
            f"{cpu} | {x['p50_ms']:.2f} | {x['p99_ms']:.2f} | "
            f"{round(paired(x, bare, 'p99_ms'), 2):.2f}x | "
            f"{x['non2xx'] + x['socket_errors']} | {x['rss_mb']:.1f} | {cold} |"
        )
    met, t = r["met"], TARGETS
    fn = results["function"]
    checks = [
        (f"throughput >= {t['throughput']}x bare", f"{r['throughput']:.2f}x", met["throughput"]),
        ("zero non-2xx under load", str(fn["non2xx"] + fn["socket_errors"]), met["non2xx"]),
        (f"p99 < {t['p99']}x bare", f"{r['p99']:.2f}x", met["p99"]),
        (f"cold start <= {t['cold_start']}x hello", f"{r['cold_start']:.2f}x", met["cold_start"]),
        (f"RSS after load <= {t['rss']}x hello", f"{r['rss']:.2f}x", met["rss"]),
    ]
    if DEPLOYED in results:
        row, deployed = results[DEPLOYED], r[DEPLOYED]
        checks += [
            (
                f"deployed (Redis + OIDC) >= {t['throughput']}x bare",
                f"{deployed['throughput']:.2f}x",
                met["deployed_throughput"],
            ),
            (
                f"deployed >= {t['vs_memory']}x the in-memory row",
                f"{deployed['vs_memory']:.2f}x",
                met["deployed_vs_memory"],
            ),
            (
                "deployed: zero non-2xx under load",
                str(row["non2xx"] + row["socket_errors"]),
                met["deployed_non2xx"],
            ),
            (f"deployed: p99 < {t['p99']}x bare", f"{deployed['p99']:.2f}x", met["deployed_p99"]),
        ]
    rows += ["", "| target | measured | |", "|---|---:|---|"]
    rows += [f"| {name} | {value} | {'met' if ok else 'NOT met'} |" for name, value, ok in checks]
    rows.append(
        "\nreq/s, CPU and p99 columns: each server's median round; ratios: the median of the "
        "ratios round by round"
    )
    rows.append(
        f"CPU-time capacity vs bare (bare's CPU µs per request / the function's): "
        f"{r['cpu_capacity']:.2f}x"
    )
    hello = results["hello"]
    if "idle_rss_mb" in fn and "idle_rss_mb" in hello:
        rows.append(
            f"Idle RSS after the first reply: function {fn['idle_rss_mb']} MiB, hello "
            f"{hello['idle_rss_mb']} MiB ({fn['idle_rss_mb'] / hello['idle_rss_mb']:.2f}x)"
        )
    return "\n".join(rows)
