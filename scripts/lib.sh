# Shared by scripts/wheel_test.sh and scripts/aarch64_test.sh (sourced after they set
# $work, their scratch folder, and $start, the time they began).

# A heading with the seconds since the script began.
step() { echo "== [$(( $(date +%s) - start )) s] $*"; }

# Runs a command and prints its output without pip's notes about this machine's package
# indexes and auditwheel's INFO lines; returns the command's status.
quiet() {
    local status=0
    "$@" > "$work/last.log" 2>&1 || status=$?
    grep -vE "^WARNING: (Location|Running pip as)|^INFO:auditwheel" "$work/last.log" || true
    return $status
}
