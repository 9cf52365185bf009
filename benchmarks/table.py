"""The results as the markdown table docs/results.md includes."""

from __future__ import annotations

from common import D_MODEL


def markdown(results: dict) -> str:
    lines = ["| measure | steerlens (s) | baseline (s) | ratio | target |", "|---|---|---|---|---|"]
    targets = {
        ("extraction", "vs_bare_forward"): "≤ 0.6",
        ("extraction", "vs_steering_vectors"): "< 1",
        ("steering_overhead", "one_layer"): "≤ 1.05",
        ("steering_overhead", "all_30_layers"): "(reported)",
        ("steered_generate", "vs_hf_generate_hook"): "≤ 1.0",
        ("sweep", "vs_naive_loop"): "(reported)",
        ("sweep", "all_coeffs_in_one_pass"): "(reported)",
        ("shared_opening", "vs_suffix_replay"): "(reported)",
        ("one_shot_step", "cached_vs_full"): "≤ 0.7",
        ("one_shot_batch", "vs_sequential"): "≤ 0.35",
        ("one_shot_batch", "vs_sequential_full_forward"): "(reported)",
    }
    for (group, key), target in targets.items():
        row = results.get(group, {}).get(key)
        if isinstance(row, dict):
            lines.append(
                f"| {group}: {key} | {row['ours_s']:.3f} | {row['baseline_s']:.3f} "
                f"| {row['ratio']:.2f} | {target} |"
            )
    sweep = results.get("sweep")
    if sweep:
        lines.append(
            f"| sweep: cost in unsteered forwards | {sweep['sweep_forwards']:.2f} | "
            f"{sweep['naive_forwards']:.2f} (naive) | | ≤ {sweep['target_forwards']:.2f} |"
        )
    cosines = results.get("extraction", {}).get("cosine_with_peer")
    if isinstance(cosines, dict):
        agree = ", ".join(f"layer {layer}: {c:.4f}" for layer, c in cosines.items())
        lines += ["", f"Cosine with steering-vectors' vector ({agree}); target ≥ 0.99."]
    memory = results.get("memory", {})
    if memory:
        lines += [
            "",
            "| texts | extra peak RSS, ours (MiB) | run_with_cache (MiB) | activations (MiB) |",
            "|---|---|---|---|",
        ]
        for key, row in memory.items():
            n = int(key.split("_")[0])
            kept = n * 4 * D_MODEL * 4 / 2**20  # texts x 4 layers x d_model float32
            lines.append(
                f"| {n} | {row['ours_mib']:.0f} | {row['run_with_cache_mib']:.0f} | {kept:.1f} |"
            )
    report = results.get("report")
    if report:
        stages = ", ".join(f"{k} {v} s" for k, v in report["stage_seconds"].items())
        lines += [
            "",
            f"`steerlens report`: {report['report_seconds']:.0f} s ({stages}); target ≤ 360 s.",
        ]
    loads = [results.get(k) for k in ("load_average_start", "load_average_end")]
    if all(loads):
        shown = " → ".join("/".join(f"{x:.1f}" for x in load) for load in loads)
        lines += ["", f"Load average (1/5/15 min) at start → end: {shown}"]
    lines += ["", f"Machine: {results['machine']}"]
    return "\n".join(lines)
