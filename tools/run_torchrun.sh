#!/usr/bin/env bash
# Usage: tools/run_torchrun.sh [torch.distributed.run arguments]
#
# Runs `$PYTHON -m torch.distributed.run ARGS` (PYTHON: default python) so
# that stopping this script stops the whole job. torchrun starts each worker
# in a session of its own, so Ctrl-C in the terminal (SIGINT to the
# foreground process group) and a SIGTERM/SIGHUP to this script or its
# process group would not reach them: they would train on. Here such a
# signal is trapped and forwarded as SIGTERM to torchrun and to every
# worker's process group (the worker and its data loader processes);
# whatever still runs after STOP_GRACE seconds (default 10) gets SIGKILL.
# The exit status is then 128 + the signal number. Otherwise the exit status
# is torchrun's. dist_train.sh and dist_test.sh run through this script.

"${PYTHON:-python}" -m torch.distributed.run "$@" &
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
