#!/usr/bin/env bash
# Instructions per request of one gateway configuration, counted by valgrind's callgrind: a
# measure that does not move with the machine's load (wrk's requests/s do, by ±10 % here).
#
#   bench/callgrind-per-request.sh LABEL CONFIG.yaml [HEADER] [PATH]
#
# Starts `portcullis start -c CONFIG.yaml` (one worker, access log off) under callgrind with
# instrumentation off, warms it up with `ab` (4 × CG_N keep-alive requests, 16 connections), then
# counts 2 × CG_N requests with instrumentation on and prints instructions per request for each
# (the lower is the steadier). Environment: CG_N (default 4000), CG_PORT (default 19100; admin
# CG_PORT+1), CG_ROOT (checkout to run, default this one: compare two commits from two worktrees
# on the same machine, in parallel if need be — the counts do not depend on the other's load),
# CG_OUT (directory for callgrind's files; `callgrind_annotate` reads them: named builtins and C++
# show, JIT-compiled JavaScript is unnamed), CG_ACCESS_LOG (PORTCULLIS_PROXY_ACCESS_LOG for the gateway;
# default off). Needs valgrind and ab (Debian: valgrind, apache2-utils).
set -euo pipefail
label=$1; cfg=$2; hdr=${3:-}; path=${4:-/}
here=$(cd "$(dirname "$0")/.." && pwd)
root=${CG_ROOT:-$here}
node=$here/node_modules/.bin/node
port=${CG_PORT:-19100}; admin=$((port + 1))
n=${CG_N:-4000}
out=${CG_OUT:-$(mktemp -d)}/$label; rm -rf "$out"; mkdir -p "$out"
PORTCULLIS_PROXY_ACCESS_LOG=${CG_ACCESS_LOG:-off} PORTCULLIS_LOG_LEVEL=warn valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$out/cg.%p" "$node" "$root/bin/portcullis.js" start -c "$cfg" --workers 1 \
  --proxy-listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" > "$out/gateway.log" 2>&1 &
vg=$!
trap 'kill $vg 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$port$path" && break; sleep 1; done
H=(); [ -n "$hdr" ] && H=(-H "$hdr")
status=$(curl -s -o /dev/null -w '%{http_code}' "${H[@]}" "http://127.0.0.1:$port$path")
for _ in 1 2 3 4; do ab -q -n "$n" -c 16 -k "${H[@]}" "http://127.0.0.1:$port$path" > /dev/null; done
counts=()
for _ in 1 2; do
  callgrind_control -z "$vg" > /dev/null; callgrind_control -i on "$vg" > /dev/null
  ab -q -n "$n" -c 16 -k "${H[@]}" "http://127.0.0.1:$port$path" | grep -q 'Failed requests:        0' || counts+=(FAILED)
  callgrind_control -d "$vg" > /dev/null; callgrind_control -i off "$vg" > /dev/null
  sleep 0.5
done
for f in $(ls "$out"/cg.*.* | sort -t. -k3 -n | tail -2); do
  total=$(grep -E '^summary' "$f" | awk '{print $2}')
  counts+=($((total / n)))
done
echo "$label status=$status instructions/request: ${counts[*]} (files in $out)"
