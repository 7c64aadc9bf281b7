# Shared by the reproduce_*.sh scripts: one Hydra multirun per table row, then the report.
# Set CUTMIX_DRY_RUN=FILE to write the command lines to FILE instead of training.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}

# run_table NAME SEEDS EXTRA_OVERRIDES... ; ROWS holds one row's overrides per element
run_table() {
    local name=$1 seeds=$2; shift 2
    local sweep_root=${SWEEP_ROOT:-runs/$name}
    local rows=()
    for row in "${ROWS[@]}"; do rows+=(--row "$row"); done
    "$PY" -m cutmix_repro.estimate --seeds "$seeds" "${rows[@]}" -- "$@"
    local i=0
    for row in "${ROWS[@]}"; do
        # shellcheck disable=SC2086  # a row is several overrides
        launch $row "seed=$seeds" "hydra.sweep.dir=$sweep_root/row$i" "$@"
        i=$((i + 1))
    done
    if [[ -z "${CUTMIX_DRY_RUN:-}" ]]; then
        "$PY" -m cutmix_repro.report "${REPORT_RUNS:-runs}" --out "${REPORT_OUT:-results}"
    fi
}

launch() {
    if [[ -n "${CUTMIX_DRY_RUN:-}" ]]; then
        printf '%s\n' "$*" >> "$CUTMIX_DRY_RUN"
    else
        "$PY" -m cutmix_repro.train -m "$@"
    fi
}
