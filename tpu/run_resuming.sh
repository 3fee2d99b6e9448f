#!/usr/bin/env bash
# Run a facepars.train command to the end, restarting it after a preemption.
#   tpu/run_resuming.sh python3 -m facepars.train --config=... --model_dir=...
#
# On SIGTERM (a spot VM's notice, a Cloud TPU maintenance event, `kubectl delete`)
# train finishes the step in flight, saves a backup at that step and exits 143;
# killed outright (kill -9, the OOM killer) it exits 137 and its last periodic or
# epoch backup stands. Either way, running the same command again resumes at the
# next step. This loop does that while the machine stays up: it restarts on 143
# and 137 and stops on anything else (0: done; 1: an error a restart would repeat;
# 2: a bad command line). A signal to this script itself is passed on to train
# and ends the loop: the machine is going down, and whatever starts the job on the
# next machine (a startup script, a Kubernetes Job, a systemd unit) reruns it there.
set -u
stopping=0
child=
forward() { stopping=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null; }
trap forward TERM INT
while :; do
  "$@" &
  child=$!
  code=0
  wait "$child" || code=$?
  while kill -0 "$child" 2>/dev/null; do  # wait returned for our trap: wait for train itself
    code=0
    wait "$child" || code=$?
  done
  if [ "$stopping" = 1 ] || { [ "$code" != 143 ] && [ "$code" != 137 ]; }; then
    exit "$code"
  fi
  echo "run_resuming: train exited $code (preempted); resuming from its backup" >&2
  sleep 2
done
