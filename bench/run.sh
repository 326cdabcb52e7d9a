#!/usr/bin/env bash
# `make bench`: install the OPC UA peer (npm ci from the committed lock
# file), build the benchmark driver and run it. Arguments go to the driver
# (see `go run ./cmd/mxbench -h`). The peer is reported as skipped, with the
# reason, when node or npm is missing or npm ci fails; speed never fails the
# run.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -z "${MXBENCH_PEER_SKIP:-}" ]; then
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		export MXBENCH_PEER_SKIP="node or npm is not installed"
	else
		echo "bench: npm ci in bench/opcua (node $(node --version))" >&2
		if ! (cd bench/opcua && timeout 600 npm ci --no-audit --no-fund --loglevel=error) >"$tmp/npm.log" 2>&1; then
			export MXBENCH_PEER_SKIP="npm ci failed: $(tail -n 3 "$tmp/npm.log" | tr '\n' ' ')"
			echo "bench: $MXBENCH_PEER_SKIP" >&2
		fi
	fi
fi

"$GO" build -o "$tmp/mxbench" ./cmd/mxbench || exit 1
"$tmp/mxbench" "$@"
