"""Draws the curves bench/curves.sh measured: one PNG per table in DATA_DIR (pairs, locations,
routing, clients; a missing table is skipped), each with its least-squares line and the slope in
the legend, and prints one RESULT line of slopes per curve for BENCHMARKS.md.
Usage: curves.py DATA_DIR PNG_DIR"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

data_dir, png_dir = sys.argv[1], sys.argv[2]


def table(name):
    path = os.path.join(data_dir, f"{name}.tsv")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        return None
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def fit(x, y):
    """Slope and intercept of the least-squares line."""
    slope, intercept = np.polyfit(x, y, 1)
    return slope, intercept


def line(ax, x, y, slope, intercept, label, style, color):
    ax.plot(x, y, style, color=color, label=label)
    xs = np.linspace(0, x.max(), 50)
    ax.plot(xs, slope * xs + intercept, ":", color=color, linewidth=1)


def save(fig, name, title):
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = os.path.join(png_dir, f"curves-{name}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def one_axis(xlabel, ylabel):
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig, ax


def save_one_axis(fig, ax, name, title):
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper left")
    save(fig, name, title)


def two_axes(xlabel, ylabel, ylabel2):
    """A figure with a second y axis on the right."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax2 = ax.twinx()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax2.set_ylabel(ylabel2)
    return fig, ax, ax2


def save_two_axes(fig, ax, ax2, name, title):
    """Both axes from zero, one legend for both, saved."""
    ax.set_ylim(bottom=0)
    ax2.set_ylim(bottom=0)
    handles, labels = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(handles + h2, labels + l2, fontsize=8, loc="upper left")
    save(fig, name, title)


t = table("pairs")
if t is not None:
    x = t["pairs"]
    rss_mb = t["rss_bytes"] / 1e6
    cpu = t["cpu_share"] * 100
    s_rss, i_rss = fit(x, t["rss_bytes"])
    s_cpu, i_cpu = fit(x, cpu)
    fig, ax, ax2 = two_axes("(monitor, origin) pairs, checked every 60 s", "server RSS (MB)", "server CPU (% of one core)")
    line(ax, x, rss_mb, s_rss / 1e6, i_rss / 1e6, f"RSS: {s_rss:.0f} bytes/pair + {i_rss / 1e6:.0f} MB", "o-", "tab:blue")
    line(ax2, x, cpu, s_cpu, i_cpu, f"CPU: {s_cpu * 1e4:.2f} % of a core per 10k pairs", "s-", "tab:red")
    save_two_axes(fig, ax, ax2, "pairs", "One server, built-in agent: memory and CPU against pairs")
    print(f"RESULT curve pairs rss_bytes_per_pair={s_rss:.0f} rss_at_zero_mb={i_rss / 1e6:.1f} "
          f"cpu_percent_per_10k_pairs={s_cpu * 1e4:.2f} lateness_p99_ms_max={t['lateness_p99_ms'].max():.1f}")

t = table("locations")
if t is not None:
    x = t["locations"]
    cpu = t["cpu_share"] * 100
    s_cpu, i_cpu = fit(x, cpu)
    per_result = t["cpu_share"] / t["results_per_s"] * 1e6
    fig, ax = one_axis("probe locations, each reporting on 10,000 origins every 60 s", "controller CPU (% of one core)")
    line(ax, x, cpu, s_cpu, i_cpu, f"controller CPU: {s_cpu:.2f} % of a core per location", "o-", "tab:red")
    save_one_axis(fig, ax, "locations", "Result ingestion: controller CPU against probe locations")
    print(f"RESULT curve locations cpu_percent_per_location={s_cpu:.2f} cpu_percent_at_zero={i_cpu:.1f} "
          f"cpu_us_per_result_median={np.median(per_result):.1f} applied_p99_ms_max={t['applied_p99_ms'].max():.1f}")

t = table("routing")
if t is not None:
    x = t["load_balancers"]
    s_b, i_b = fit(x, t["build_us"])
    s_t, i_t = fit(x, t["table_us"])
    s_s, i_s = fit(x, t["snapshot_bytes"])
    fig, ax, ax2 = two_axes("load balancers (each with a pool of its own)", "time (ms)", "snapshot as sent to an edge (MB of JSON)")
    line(ax, x, t["build_us"] / 1e3, s_b / 1e3, i_b / 1e3, f"snapshot build: {s_b:.2f} µs per load balancer", "o-", "tab:blue")
    line(ax, x, t["table_us"] / 1e3, s_t / 1e3, i_t / 1e3, f"edge's routing table: {s_t:.2f} µs per load balancer", "^-", "tab:green")
    line(ax2, x, t["snapshot_bytes"] / 1e6, s_s / 1e6, i_s / 1e6, f"snapshot size: {s_s:.0f} bytes per load balancer", "s-", "tab:red")
    save_two_axes(fig, ax, ax2, "routing", "Routing snapshot: build time and size against load balancers")
    print(f"RESULT curve routing build_us_per_lb={s_b:.2f} table_us_per_lb={s_t:.2f} bytes_per_lb={s_s:.0f}")

t = table("clients")
if t is not None:
    x = t["clients"]
    s_v, i_v = fit(x, t["vantage_p99_ms"])
    s_n, i_n = fit(x, t["nginx_p99_ms"])
    fig, ax = one_axis("concurrent clients (wrk connections)", "p99 latency (ms)")
    ax.plot(x, t["vantage_p99_ms"], "o-", color="tab:blue", label=f"Vantage p99: {s_v * 1e3:.0f} µs per client")
    ax.plot(x, t["nginx_p99_ms"], "s-", color="tab:gray", label=f"nginx, same bytes from a file, p99: {s_n * 1e3:.0f} µs per client")
    ax.set_xscale("log", base=2)
    save_one_axis(fig, ax, "clients", "API: GET one pool with a token, p99 against concurrent clients")
    print(f"RESULT curve clients vantage_p99_us_per_client={s_v * 1e3:.0f} nginx_p99_us_per_client={s_n * 1e3:.0f} "
          f"vantage_rps_max={t['vantage_rps'].max():.0f} nginx_rps_max={t['nginx_rps'].max():.0f}")
