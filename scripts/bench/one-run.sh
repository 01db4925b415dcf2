#!/usr/bin/env bash
# one-run.sh: one load-generator run against one edge, pinned as `make
# bench-system` pins them (edge on CPU 0 with GOMAXPROCS=1; a separate
# NATS server and the load generator on CPU 1), on loopback ports 24222
# (NATS), 28080 (edge) and 29090 (edge admin). For A/B pairs of two edge
# builds: run it alternately with each binary.
#
#   scripts/bench/one-run.sh OUTDIR TAG PRESET [EDGE_BIN [LOADGEN_BIN [loadgen flags...]]]
#
# Defaults: bin/edge and bin/loadgen of this checkout (make load-bins, which
# also builds bin/nats-server). Writes OUTDIR/TAG.txt (the load generator's
# table), TAG.json, TAG.edge.log, TAG.nats.log and TAG.metrics (the edge's
# /metrics at the end). Environment: EFLAGS adds edge flags; EPROF=SECONDS
# takes an edge CPU profile (needs EFLAGS=--admin-pprof) EPDELAY seconds
# (default 0.3) after the edge is ready, into TAG.edge.prof.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ $# -lt 3 ]; then
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
out=$1 tag=$2 preset=$3
ebin=${4:-$root/bin/edge} lbin=${5:-$root/bin/loadgen}
shift $(( $# < 5 ? $# : 5 ))
for b in "$ebin" "$lbin" "$root/bin/nats-server"; do
	[ -x "$b" ] || { echo "one-run.sh: $b: not an executable (make load-bins)" >&2; exit 2; }
done
for port in 24222 28080 29090; do
	if (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
		echo "one-run.sh: 127.0.0.1:$port is in use (a run left behind?): the run would measure that process" >&2
		exit 2
	fi
done
mkdir -p "$out"
secret=one-run-secret-0123456789abcdef-xyz
work=$(mktemp -d)
taskset -c 1 "$root/bin/nats-server" -js -sd "$work/nats" -a 127.0.0.1 -p 24222 >"$out/$tag.nats.log" 2>&1 &
nats=$!
edge=
trap 'kill $edge $nats 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
up=
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/24222) 2>/dev/null && up=1 && break; sleep 0.2; done
[ -n "$up" ] && kill -0 $nats 2>/dev/null || { echo "one-run.sh: NATS did not start; see $out/$tag.nats.log" >&2; exit 1; }
# shellcheck disable=SC2086 # EFLAGS is a list of flags
taskset -c 0 env GOMAXPROCS=1 EDGE_JWT_SECRET=$secret "$ebin" --addr 127.0.0.1:28080 --admin-addr 127.0.0.1:29090 \
	--nats-url nats://127.0.0.1:24222 --node-name bench --data-dir "$work/edge" --log-level warn --drain-duration 0s \
	--max-conns 30000 --max-conns-per-ip 30000 --ready-fill 1 ${EFLAGS:-} >"$out/$tag.edge.log" 2>&1 &
edge=$!
ready=
for _ in $(seq 100); do curl -sf http://127.0.0.1:29090/readyz >/dev/null && ready=1 && break; sleep 0.2; done
[ -n "$ready" ] && kill -0 $edge 2>/dev/null || { echo "one-run.sh: the edge did not get ready; see $out/$tag.edge.log" >&2; exit 1; }
prof=
if [ -n "${EPROF:-}" ]; then
	(sleep "${EPDELAY:-0.3}"; curl -sf -o "$out/$tag.edge.prof" "http://127.0.0.1:29090/debug/pprof/profile?seconds=$EPROF" ||
		echo "one-run.sh: no profile (is EFLAGS=--admin-pprof set?)" >&2) &
	prof=$!
fi
LOADGEN_JWT_SECRET=$secret timeout 300 taskset -c 1 "$lbin" --preset "$preset" \
	--url ws://127.0.0.1:28080/v1/ws --nats-url nats://127.0.0.1:24222 --edge-pid $edge \
	--edge-metrics http://127.0.0.1:29090/metrics --json "$out/$tag.json" --quiet "$@" >"$out/$tag.txt" 2>&1
rc=$?
[ -n "$prof" ] && wait $prof
curl -s http://127.0.0.1:29090/metrics >"$out/$tag.metrics"
grep -E '^(connect|  cpu while|latency|delivered|edge cpu|loadgen cpu)' "$out/$tag.txt" | head -8
exit $rc
