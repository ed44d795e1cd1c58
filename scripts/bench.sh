#!/usr/bin/env bash
# Placeholder: the benchmark is not written yet.
echo "scripts/bench.sh: not written yet" >&2
exit 1
