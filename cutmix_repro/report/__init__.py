"""Error-rate tables laid out like the paper's, written from real runs.

``python -m cutmix_repro.report RUN_DIR_OR_GLOB... [--out runs/report]`` reads every ``results.json``
below the given run or multirun directories and writes, under ``--out``:
- one Markdown table per paper table (rows in the paper's order: paper top-1/top-5, ours best-epoch
  mean ± std over seeds with the number of runs, ours last-epoch mean, difference to the paper) and a
  validation-curve plot per table;
- the Figure 3 sweeps as tables and PNG plots;
- ``sweeps.md`` and a plot per sweep found among the runs: runs that differ in one numeric key only
  (and the seed), drawn as error against the swept value with seed error bars;
- ``table10.md`` from the runs of ``python -m cutmix_repro.transfer`` (detection mAP, caption scores), each
  row's backbone being the Table 3 run of its setting;
- ``unmatched_runs.md`` for runs that match no paper row, with their model and regularizer options.
Cells with no run say "not run": nothing is ever filled from the paper into "ours".
"""

from .build import generate, main, print_summary
from .runs import PROTOCOL_NOTE, find_results, group_runs, stats
from .transfer import transfer_markdown

__all__ = ["PROTOCOL_NOTE", "find_results", "generate", "group_runs", "main", "print_summary", "stats",
           "transfer_markdown"]
