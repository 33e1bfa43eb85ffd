#!/usr/bin/env bash
# Usage: tools/run_torchrun.sh [torch.distributed.run arguments]
#
# Runs `$PYTHON -m torch.distributed.run ARGS` (PYTHON: default python) so
# that stopping this script stops the whole job. torchrun starts each worker in a session of its own,
# so Ctrl-C in the terminal (SIGINT to the foreground process group) and a
# SIGTERM/SIGHUP to this script or its process group would not reach them:
# they would train on. Here such a signal is trapped and forwarded as SIGTERM
# to torchrun and to every worker's process group (the worker and its data
# loader processes); whatever still runs after STOP_GRACE seconds (default
# 10) gets SIGKILL. The exit status is then 128 + the signal number.
# Otherwise the exit status is torchrun's. dist_train.sh and dist_test.sh
# run through this script.
#
# A SIGKILL to this script cannot be trapped: torchrun then gets SIGTERM from
# the kernel (setpriv --pdeathsig, util-linux), which stops its workers, and
# each worker gets SIGTERM when torchrun exits (prctl PR_SET_PDEATHSIG, set by
# projects.internimage.apis.build_runner), so nothing trains on as an orphan.
#
# A signal that is ignored when a non-interactive shell starts cannot be
# trapped: `trap` below would silently do nothing. A job that a script starts
# in the background (`dist_train.sh ... &`, no job control) inherits SIGINT
# ignored; Ctrl-C then reached torchrun alone (it handles SIGINT itself),
# which stopped the workers and exited 1, and so did this script. So this
# script restarts itself once with SIGINT at its default action: Ctrl-C gives
# 130 however it was started.
if [ "$(trap -p INT)" = "trap -- '' SIGINT" ] && [ -z "${_RUN_TORCHRUN_SIGINT_RESET:-}" ]; then
    export _RUN_TORCHRUN_SIGINT_RESET=1
    exec "${PYTHON:-python}" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' bash "$0" "$@"
fi

PDEATHSIG=()
if command -v setpriv >/dev/null 2>&1 && setpriv --pdeathsig TERM true 2>/dev/null; then
    PDEATHSIG=(setpriv --pdeathsig TERM)
fi
# the workers check that torchrun's parent is still this script
export INTERNIMAGE_LAUNCHER_PID=$$
"${PDEATHSIG[@]}" "${PYTHON:-python}" -m torch.distributed.run "$@" &
TORCHRUN_PID=$!

alive() {
    local pid
    for pid in "$@"; do
        kill -0 "$pid" 2>/dev/null && return 0
    done
    return 1
}

stop_job() {
    local signum=$1 workers deadline pid
    trap - INT TERM HUP
    # the workers, before torchrun exits and they lose their parent
    workers=$(pgrep -P "$TORCHRUN_PID" 2>/dev/null)
    echo "$(basename "$0"): got signal $signum, stopping torchrun ($TORCHRUN_PID) and" \
         "its workers (${workers//$'\n'/ })" >&2
    kill -TERM "$TORCHRUN_PID" 2>/dev/null
    for pid in $workers; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    done
    deadline=$((SECONDS + ${STOP_GRACE:-10}))
    while alive "$TORCHRUN_PID" $workers && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.2
    done
    for pid in $workers; do
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    done
    kill -KILL "$TORCHRUN_PID" 2>/dev/null
    wait "$TORCHRUN_PID" 2>/dev/null
    exit $((128 + signum))
}

trap 'stop_job 2' INT
trap 'stop_job 15' TERM
trap 'stop_job 1' HUP

wait "$TORCHRUN_PID"
exit $?
