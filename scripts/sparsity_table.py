#!/usr/bin/env python3
"""The table of scripts/sparsity_sweep.sh: one row per trained variant, from the files the sweep left in OUT.

  sparsity_table.py OUT

Reads OUT/variants.csv (the sweep's manifest), and per variant OUT/<name>/: metrics.csv (clean test accuracy
of the best-on-validation epoch), attack.md and attack_pgd28.md (the tables `spikegrad attack` prints),
analysis/summary.csv (`spikegrad analyze`). Writes OUT/sweep.csv, OUT/sweep.md and OUT/scatter.csv (the
scripts/plot.py scatter input: one row per variant and attack). Standard library only.
"""
import csv
import os
import sys


class TableError(Exception):
    pass


def read_csv_rows(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError as e:
        raise TableError(f"{path}: cannot read ({e.strerror}); did that step of the sweep run?")


def best_clean_accuracy(metrics_path):
    rows = read_csv_rows(metrics_path)
    if not rows:
        raise TableError(f"{metrics_path}: no epochs recorded")
    scored = [r for r in rows if r.get("val_acc")]
    best = max(scored, key=lambda r: float(r["val_acc"])) if scored else rows[-1]
    return float(best["test_acc"]), int(best["epoch"])


def attack_rows(path):
    """{(attack, eps text): robust accuracy} from the markdown table of `spikegrad attack`."""
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        raise TableError(f"{path}: cannot read ({e.strerror})")
    out = {}
    header = None
    for line in lines:
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if set(cells[0]) <= set("-"):
            continue
        row = dict(zip(header, cells))
        settings = row.get("settings", "")
        eps = next((p.split()[1] for p in settings.split(",") if p.strip().startswith("eps ")), "")
        out[(row["attack"], eps)] = float(row["robust accuracy (%)"])
    if not out:
        raise TableError(f"{path}: no attack table found (expected the table `spikegrad attack` prints)")
    return out


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = argv[1]
    variants = read_csv_rows(os.path.join(out, "variants.csv"))
    rows, scatter = [], []
    for v in variants:
        d = os.path.join(out, v["name"])
        clean, epoch = best_clean_accuracy(os.path.join(d, "metrics.csv"))
        attacks = attack_rows(os.path.join(d, "attack.md"))
        attacks.update({(a + "28", e): acc for (a, e), acc in attack_rows(os.path.join(d, "attack_pgd28.md")).items()})
        summary = read_csv_rows(os.path.join(d, "analysis", "summary.csv"))
        if len(summary) != 1:
            raise TableError(f"{d}/analysis/summary.csv: expected one row, got {len(summary)}")
        s = summary[0]
        row = {
            "variant": v["name"], "model": v["model"], "stem_pool": v["stem_pool"], "depth": v["depth"],
            "dataset": v["dataset"], "best_epoch": epoch, "clean_acc": clean,
            "clean_attacked": attacks.get(("fgsm", "0"), attacks.get(("fgsm", "0/255"))),
            "fgsm_6": attacks.get(("fgsm", "6/255")), "pgd_6": attacks.get(("pgd", "6/255")),
            "fgsm_8": attacks.get(("fgsm", "8/255")), "pgd_8": attacks.get(("pgd", "8/255")),
            "pgd28_8": attacks.get(("pgd28", "8/255")),
            "input_grad_zero": float(s["domain_z"]), "input_s_eff": float(s["domain_s_eff"]),
            "R": float(s["R"]), "bound_l0": float(s["bound_l0"]), "firing_sparsity": float(s["sparsity"]),
            "bn_mode": s["bn_mode"], "domain": s["attack_domain"], "encoding": s["encoding"],
        }
        rows.append(row)
        for attack, eps in (("fgsm", "6/255"), ("pgd", "6/255"), ("fgsm", "8/255"), ("pgd", "8/255")):
            acc = attacks.get((attack, eps))
            if acc is not None:  # clean on the same examples as the attack when the sweep measured it
                same = row["clean_attacked"] if row["clean_attacked"] is not None else clean
                scatter.append({"model": v["name"], "sparsity": row["firing_sparsity"], "domain_z": row["input_grad_zero"],
                                "input_s_eff": row["input_s_eff"], "clean_acc": same, "robust_acc": acc,
                                "eps": eps, "attack": attack})
    columns = list(rows[0].keys())
    with open(os.path.join(out, "sweep.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(out, "scatter.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, list(scatter[0].keys()))
        w.writeheader()
        w.writerows(scatter)

    def fmt(x, digits=2):
        return "—" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))

    lines = [
        "| variant | clean (test subset) | clean (attacked examples) | FGSM 6/255 | PGD 6/255 | FGSM 8/255 | PGD 8/255 | PGD-28 8/255 | input-grad zeros | "
        "s_eff | R | √(2‖g‖₀) | firing sparsity |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append("| " + " | ".join([r["variant"], fmt(r["clean_acc"]), fmt(r["clean_attacked"]), fmt(r["fgsm_6"]), fmt(r["pgd_6"]),
                                         fmt(r["fgsm_8"]), fmt(r["pgd_8"]), fmt(r["pgd28_8"]),
                                         fmt(r["input_grad_zero"], 4), fmt(r["input_s_eff"], 4), fmt(r["R"], 2),
                                         fmt(r["bound_l0"], 1), fmt(r["firing_sparsity"], 3)]) + " |")
    lines += ["",
              "Accuracies in %: clean on the test subset at the best-on-validation epoch, and on the attacked "
              "examples (FGSM at eps 0); attacks on the first "
              f"attack-subset test examples, in the {rows[0]['domain']} domain, BN in eval mode. "
              "Input-gradient zeros, s_eff and R are `spikegrad analyze`'s, at eps 8/255, BN mode "
              f"{rows[0]['bn_mode']}."]
    with open(os.path.join(out, "sweep.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except TableError as e:
        print(f"sparsity_table.py: {e}", file=sys.stderr)
        sys.exit(2)
