#!/bin/bash
# Run a benchmark with this machine's background training paused (SIGSTOP) and resumed after,
# whatever happens: the "quiet" figures in the README and model card were measured this way.
#   bash benchmarks/quiet.sh .venv/bin/python benchmarks/embed_speed.py --threads 2 ...
pids=$(pgrep -f "training.cli fit" | tr '\n' ' ')
resume() { [ -n "$pids" ] && kill -CONT $pids 2>/dev/null; echo "quiet.sh: training resumed ($pids)" >&2; }
trap resume EXIT INT TERM
[ -n "$pids" ] && kill -STOP $pids && echo "quiet.sh: training paused ($pids)" >&2
sleep 3  # let the paused process's CPU settle
"$@"
