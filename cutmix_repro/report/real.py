"""The paper's claims measured on real images (``paper_tables.yaml``'s ``fashion_mnist_cpu``, ``fashion_mnist`` and
``fashion_mnist_localization``): each row's top-1 error (or, with ``metric: top1_loc``, top-1 localization
accuracy) over seeds, its difference from the baseline with a 95% confidence interval and Welch's t-test, the
claim's pairs tested the same way, and what that says in words.

The error compared is each run's *last* epoch (no test-set selection; the FMix paper reports the last epoch too);
the best epoch is shown beside it. Welch's t (``scipy.stats.ttest_ind(equal_var=False)``): the two rows' means
compared without assuming equal variances, degrees of freedom by Welch–Satterthwaite; the interval is
``diff ± t_{0.975, df} · SE``. With three seeds a row a test has little power: "no significant difference" is
not "no difference", and the report says which.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from scipy import stats as scipy_stats

from ..engine.records import BEST_TOP1, BEST_TOP1_LOC, LAST_MAX_BOX_ACC_V2, LAST_TOP1, LAST_TOP1_LOC, WALL_TIME
from ..paper import config_key, row_overrides

ALPHA = 0.05  # two-sided: 95% intervals


@dataclass(frozen=True)
class Measure:
    """What a real table compares: the last epoch's value (``last``), the best epoch's (``best``), in words."""

    last: str
    best: str
    name: str  # "error", "top-1 localization accuracy"
    short: str  # a column's name: "top-1", "top-1 loc."
    lower_is_better: bool


MEASURES = {"top1": Measure(LAST_TOP1, BEST_TOP1, "error", "top-1", True),
            "top1_loc": Measure(LAST_TOP1_LOC, BEST_TOP1_LOC, "top-1 localization accuracy", "top-1 loc.", False)}


def welch(a: list[float], b: list[float]) -> dict[str, float] | None:
    """Mean(a) − mean(b), its 95% Welch interval, t, the degrees of freedom and the two-sided p-value; None when
    either side has fewer than two values or both have no spread."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff = statistics.fmean(a) - statistics.fmean(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return None
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    result = scipy_stats.ttest_ind(a, b, equal_var=False)
    half = float(scipy_stats.t.ppf(1 - ALPHA / 2, df)) * se
    return {"diff": diff, "low": diff - half, "high": diff + half, "t": float(result.statistic), "df": df,
            "p": float(result.pvalue)}


def verdict(test: dict[str, float] | None, lower_is: str, other: str, measure: Measure = MEASURES["top1"]) -> str:
    """``lower_is`` against ``other`` in words, from ``welch(lower_is's values, other's values)``."""
    if test is None:
        return f"{lower_is} vs {other}: not enough runs to test (two or more seeds each)"
    if test["p"] < ALPHA:
        word = "lower" if test["diff"] < 0 else "higher"
        return f"{lower_is} has a significantly {word} {measure.name} than {other} ({_pair(test)})"
    return f"{lower_is} vs {other}: no significant difference at this number of seeds ({_pair(test)})"


def _pair(test: dict[str, float]) -> str:
    return (f"Δ {test['diff']:+.2f} points, 95% CI [{test['low']:+.2f}, {test['high']:+.2f}], Welch's t = "
            f"{test['t']:.2f}, df = {test['df']:.1f}, p = {test['p']:.3f}")


def _train_images(run: dict) -> str:
    """The run's training set size: its ``dataset.train_subset`` (results.json, else the run's ``.hydra/config.yaml``),
    else "all"."""
    options = run.get("dataset_options")
    if options is None:
        import yaml

        try:
            options = yaml.safe_load((Path(run["_dir"]) / ".hydra" / "config.yaml").read_text())["dataset"]
        except (OSError, KeyError, TypeError, yaml.YAMLError):
            return "not recorded"
    subset = options.get("train_subset")
    return f"{subset:,}" if subset else "all"


def _fmt(values: list[float]) -> str:
    if not values:
        return "not run"
    if len(values) == 1:
        return f"{values[0]:.2f} (n=1)"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f} (n={len(values)})"


def real_markdown(table: dict, groups: dict[str, list[dict]], used: set[str]) -> tuple[str, dict]:
    """The table, its tests and its verdict; and a summary (per row: label, n, mean last error)."""
    rows = []
    for row in table["rows"]:
        key = config_key(tuple(row_overrides(table, row)))
        runs = groups.get(key, [])
        if runs:
            used.add(key)
        rows.append((row, runs))
    measure = MEASURES[table.get("metric", "top1")]
    localization = measure.last == LAST_TOP1_LOC
    by_label = {row["label"]: [r[measure.last] for r in runs] for row, runs in rows}
    baseline = by_label.get(table["rows"][0]["label"], [])
    has_paper = any(row.get("top1") is not None for row in table["rows"])
    header = ["Method", *(["Published top-1"] if has_paper else []), f"Last {measure.short}", f"Best {measure.short}",
              f"Δ last vs {table['rows'][0]['label'].lower()} (95% CI)", "Welch p",
              *(["Last MaxBoxAccV2", "Last top-1 err."] if localization else []), "Epochs", "Training images"]
    lines = [f"## {table['title']}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, (row, runs) in enumerate(rows):
        last = [r[measure.last] for r in runs]
        test = welch(last, baseline) if index else None
        delta = "—" if index == 0 else ("not run" if not runs else "n < 2" if test is None else
                                        f"{test['diff']:+.2f} [{test['low']:+.2f}, {test['high']:+.2f}]")
        cells = [row["label"]]
        if has_paper:
            published = row.get("top1")
            cells.append("—" if published is None else
                         f"{published:.2f}" + (f" ± {row['published_std']:.2f}" if "published_std" in row else ""))
        cells += [_fmt(last), _fmt([r[measure.best] for r in runs]), delta,
                  "—" if test is None else f"{test['p']:.3f}"]
        if localization:
            cells += [_fmt([r[LAST_MAX_BOX_ACC_V2] for r in runs]), _fmt([r[LAST_TOP1] for r in runs])]
        cells += [", ".join(str(e) for e in sorted({r["epochs"] for r in runs})) or "—",
                  ", ".join(sorted({_train_images(r) for r in runs})) or "—"]
        lines.append("| " + " | ".join(cells) + " |")
    claim = table.get("claim")
    if claim:
        lines += ["", f"**The claim** ({claim['source']}):", ""]
        method = by_label.get(claim["method"], [])
        tests = {other: welch(method, by_label.get(other, [])) for other in claim["beats"]}
        lines += [f"- {verdict(test, claim['method'], other, measure)}" for other, test in tests.items()]
        lines += ["", claim_in_words(claim["method"], tests, measure)]
    lines += question_lines(table.get("questions", []), rows, measure)
    every = [r for _, runs in rows for r in runs]
    lines += robustness_lines(rows)
    if every:
        lines += ["", provenance(every)]
    if localization:
        lines += ["", "Top-1 localization accuracy in percent on the test objects: the share of test images whose "
                  "top-1 class is right and whose CAM box (the class activation map of the predicted class, "
                  "min-max scaled, thresholded at 0.15, the box of its largest connected region) has IoU ≥ 0.5 "
                  "with the object's box, as the paper scores Table 9 (clovaai/wsolevaluation's conventions, "
                  "cutmix_repro/localization.py); MaxBoxAccV2: wsolevaluation's recommended metric (the true "
                  "class's map, the boxes of all its regions, the best threshold for each IoU of 0.3, 0.5 and 0.7, "
                  "averaged). *last*: the final epoch (the compared number), "
                  "*best*: the highest over epochs. Mean ± sample standard deviation over seeds. Δ and its interval: "
                  "Welch's two-sample t (unequal variances), two-sided, α = 0.05.", ""]
    else:
        lines += ["", "Top-1 error in percent on the whole test set; *last*: the final epoch (the compared number), "
                  "*best*: the lowest over epochs (picked on the test set, shown for comparison with the paper's "
                  "protocol). Mean ± sample standard deviation over seeds. Δ and its interval: Welch's two-sample "
                  "t (unequal variances), two-sided, α = 0.05.", ""]
    summary = {row["label"]: (len(by_label[row["label"]]), statistics.fmean(by_label[row["label"]]))
               for row, runs in rows if runs}
    return "\n".join(lines), summary


def question_lines(questions: list[dict], rows: list[tuple[dict, list[dict]]], measure: Measure) -> list[str]:
    """A table's further questions (``questions``: its text and the pairs of rows that answer it): each pair tested
    on the table's measure and, for a localization table, on the top-1 error too."""
    runs_of = {row["label"]: runs for row, runs in rows}
    measures = [measure] + ([MEASURES["top1"]] if measure.last != LAST_TOP1 else [])
    lines = []
    for question in questions:
        lines += ["", f"**{question['text']}**", ""]
        for first, second in question["pairs"]:
            for m in measures:
                test = welch([r[m.last] for r in runs_of.get(first, [])], [r[m.last] for r in runs_of.get(second, [])])
                lines.append(f"- {'top-1 error' if m.last == LAST_TOP1 else m.name}: {verdict(test, first, second, m)}")
    return lines


def claim_in_words(method: str, tests: dict[str, dict | None], measure: Measure = MEASURES["top1"]) -> str:
    """Whether the claim holds, in one sentence."""
    if any(t is None for t in tests.values()):
        return "**Verdict:** not testable yet: some rows have fewer than two finished seeds."
    sign = -1 if measure.lower_is_better else 1  # the direction that is better
    beaten = [o for o, t in tests.items() if t["p"] < ALPHA and t["diff"] * sign > 0]
    reversed_ = [o for o, t in tests.items() if t["p"] < ALPHA and t["diff"] * sign < 0]
    unclear = [o for o in tests if o not in beaten and o not in reversed_]
    if len(beaten) == len(tests):
        better = "lower" if measure.lower_is_better else "higher"
        return f"**Verdict:** the paper's ranking holds at this scale: {method} has a significantly {better} " \
               f"{measure.name} than {', '.join(tests)}."
    parts = []
    if beaten:
        parts.append(f"{method} is significantly better than {', '.join(beaten)}")
    if reversed_:
        parts.append(f"significantly worse than {', '.join(reversed_)}")
    if unclear:
        which = ", ".join(f"{'higher' if tests[o]['diff'] > 0 else 'lower'} than {o}'s ({tests[o]['diff']:+.2f}, "
                          f"p = {tests[o]['p']:.3f})" for o in unclear)
        parts.append(f"its mean {measure.name} is {which}: not significant with these seeds")
    if reversed_:
        return f"**Verdict:** the paper's ranking does not hold at this scale: {'; '.join(parts)}."
    return f"**Verdict:** the paper's ranking is not confirmed at this scale: {'; '.join(parts)}."


def provenance(runs: list[dict]) -> str:
    """Where and when the runs were measured, and how long they took."""
    machines = sorted({f"{r.get('machine', {}).get('platform', '?')} ({r.get('device', '?')}, "
                       f"{r.get('machine', {}).get('threads', r.get('machine', {}).get('cpu_count', '?'))} thread(s) "
                       "per run)" for r in runs})
    train_s = sum(r.get(WALL_TIME, 0.0) for r in runs)
    files = [Path(r["_dir"]) / "results.json" for r in runs]
    ended = [f.stat().st_mtime for f in files if f.exists()]
    when = "" if not ended else \
        f", finished {datetime.fromtimestamp(min(ended), timezone.utc):%Y-%m-%d %H:%M} to " \
        f"{datetime.fromtimestamp(max(ended), timezone.utc):%H:%M} UTC"
    return (f"Measured by this code: {len(runs)} runs on {'; '.join(machines)}{when}; training and evaluation "
            f"{train_s / 60:.1f} run-minutes in all. Report written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.")


def _evaluation(run: dict) -> dict | None:
    path = Path(run["_dir"]) / "evaluation.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


ROBUSTNESS = [  # (column, the value of one evaluation.json, the paper's claim it speaks to, lower is better)
    ("FGSM top-1 acc.", lambda e: e["fgsm"]["top1_acc"][0], "Table 11: CutMix more robust to FGSM", False),
    ("ECE (%)", lambda e: e["calibration"]["all"]["ece"], "Table 12's discussion: calibration", True),
    ("Centre occlusion err.", lambda e: _middle(e["occlusion"], "centre_top1_err"),
     "Figure 5(a): CutMix more robust to occlusion", True),
    ("Boundary occlusion err.", lambda e: _middle(e["occlusion"], "boundary_top1_err"),
     "Figure 5(a): CutMix more robust to occlusion", True),
]


def _middle(occlusion: dict, key: str) -> float:
    """The error at the middle square size of the sweep (half the side with evaluate's default sizes)."""
    return occlusion[key][len(occlusion["sizes"]) // 2]


def robustness_lines(rows: list[tuple[dict, list[dict]]]) -> list[str]:
    """``python -m cutmix_repro.evaluate``'s numbers of the rows' runs (where evaluated), mean ± std, and CutMix
    against the baseline on each (Welch)."""
    values: dict[str, dict[str, list[float]]] = {}
    eps, size = None, None
    for row, runs in rows:
        for run in runs:
            evaluation = _evaluation(run)
            if not evaluation:
                continue
            for column, read, _, _ in ROBUSTNESS:
                try:
                    values.setdefault(row["label"], {}).setdefault(column, []).append(float(read(evaluation)))
                except (KeyError, IndexError, TypeError):
                    continue
            eps = eps or (evaluation.get("fgsm") or {}).get("eps", [None])[0]
            sizes = (evaluation.get("occlusion") or {}).get("sizes")
            size = size or (sizes[len(sizes) // 2] if sizes else None)
    if not values:
        return []
    lines = ["", "**Robustness and calibration** (`python -m cutmix_repro.evaluate RUN clean fgsm calibration "
             f"occlusion` on each run's best.pt): FGSM top-1 accuracy at ε = {(eps or float('nan')) * 255:.0f}/255 "
             f"(pixel units), expected calibration error (15 bins), top-1 error with a centred {size}×{size} square "
             "occluded (centre) or everything outside it (boundary).", "",
             "| Method | " + " | ".join(c for c, *_ in ROBUSTNESS) + " |", "|" + "---|" * (len(ROBUSTNESS) + 1)]
    for label, by_column in values.items():
        lines.append(f"| {label} | " + " | ".join(_fmt(by_column.get(c, [])) for c, *_ in ROBUSTNESS) + " |")
    labels = list(values)
    baseline = rows[0][0]["label"]
    cutmix = next((label for label in labels if "CutMix" in label), None)
    if cutmix and baseline in values:
        lines.append("")
        for column, _, claim, lower in ROBUSTNESS:
            mine, theirs = values[cutmix].get(column, []), values[baseline].get(column, [])
            test = welch(mine, theirs)
            if test is None:
                why = "not enough evaluated runs to test" if min(len(mine), len(theirs)) < 2 else \
                    f"the same on every run ({statistics.fmean(mine):.2f} vs {statistics.fmean(theirs):.2f})"
                lines.append(f"- {column} ({claim}): {why}")
                continue
            better = (test["diff"] < 0) == lower
            word = (("better" if better else "worse") + " than") if test["p"] < ALPHA else "not distinguishable from"
            lines.append(f"- {column} ({claim}): CutMix {word} the baseline ({_pair(test)})")
    return lines
