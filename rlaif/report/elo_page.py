"""The leaderboard's plot (SVG) and self-contained HTML page for `rlaif elo`."""
from __future__ import annotations

import io

from rlaif.report.html import Section, interval_plot, metrics, new_figure, render_page, save_figure, table


def leaderboard_svg(board: dict) -> str:
    """A forest plot of ratings with their bootstrap intervals, best at the top, as SVG text."""
    rows = board["ratings"]
    fig, ax = new_figure(6.4, max(1.8, 0.3 * len(rows) + 1.0))
    ys = list(range(len(rows)))[::-1]
    for y, r in zip(ys, rows, strict=True):
        if r["ci_low"] is not None:
            ax.plot([r["ci_low"], r["ci_high"]], [y, y], color="#0969da", lw=2)
        ax.plot([r["rating"]], [y], "o", color="#1f2328", ms=4)
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{r['rank']}. {r['model']}" for r in rows], fontsize=8)
    ax.set_xlabel(f"rating ({board['scale']})")
    ax.grid(axis="x", alpha=0.3)
    buf = io.BytesIO()
    save_figure(fig, buf, fmt="svg")
    return buf.getvalue().decode("utf-8")


def render_elo_html(board: dict) -> str:
    rows = board["ratings"]
    cards = {"models": board["n_models"], "battles": board["n_battles"], "bootstrap rounds": board["bootstrap_rounds"]}
    blocks = [metrics(cards),
              f"Method: {board['method']}; scale: {board['scale']}; rank: {board['rank_rule']}.",
              interval_plot([f"{r['rank']}. {r['model']}" for r in rows], [r["rating"] for r in rows],
                            [r["ci_low"] for r in rows], [r["ci_high"] for r in rows], xlabel="rating",
                            caption="ratings with 95% bootstrap intervals (2.5 and 97.5 percentiles)"),
              table([{"rank": r["rank"], "model": r["model"], "rating": f"{r['rating']:.1f}",
                      "95% interval": "\u2014" if r["ci_low"] is None else f"{r['ci_low']:.1f} to {r['ci_high']:.1f}",
                      "battles": r["n_battles"], "win rate (ties half)": r["win_rate"]} for r in rows])]
    if "style_control" in board:
        sc = board["style_control"]
        blocks.append(f"Style control on length: covariate {sc['covariate']}, coefficient "
                      f"{sc['length_coefficient']:.3f} (logit per standard deviation).")
    return render_page("Leaderboard", [Section("Ratings", blocks)],
                       meta={"battles": board["n_battles"], "seed": board["seed"]})
