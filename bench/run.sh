#!/usr/bin/env bash
# bench/run.sh: the benchmark behind `make bench`.
#
# Builds bin/introspectd and bin/introspect-bench, runs the load scenarios
# against introspectd and, in the same run, against the baselines (the
# fixed-body fasthttp ceiling and net/http + golang-jwt), runs the raw
# signature-verify benchmarks, and writes bench/results/YYYY-MM-DD-HHMM.md
# and bench/results/latest.md. Raw results (JSON, logs, profiles) stay in
# bench/results/tmp/STAMP/ (not committed).
#
# Each server runs pinned to CPU 0 and the load tool to CPU 1 (taskset), so
# the two do not fight over a core; with one CPU both share it (and the
# report says so through the CPU lists it records).
#
# Knobs (environment):
#   BENCH_DURATION=10s        measured time of each run
#   BENCH_CONNECTIONS=50      keep-alive connections of the closed loop
#   BENCH_HIT_PAIRS=3         closed-loop hit runs of the ceiling and of introspectd (alternating), judged on the median ratio
#   BENCH_OPEN_PAIRS=8        paired open-loop runs of the ceiling and introspectd (one window each, taking turns)
#   BENCH_CONTROL_PAIRS=6     paired open-loop runs of two ceilings: the noise floor of a p99 ratio (0: none)
#   BENCH_MATCHED_PAIRS=4     paired open-loop runs of introspectd and the CPU-matched ceiling (0: none)
#   BENCH_SLICE=250ms         the turns of a paired run
#   BENCH_TOKENS=10000        warmed tokens in the hit runs
#   BENCH_GARBAGE_REQUESTS=1300000  garbage run: requests, 80% garbage (a million garbage tokens)
#   BENCH_GARBAGE_DURATION=120s     ... or this long at most
#   BENCH_MEMORY_TOKENS=1000000 tokens cached in the memory run (0: skip it)
#   BENCH_MISS_ALGS="RS256 PS256 ES256 EdDSA"
#   BENCH_PPROF=1             profile the hit path (CPU and allocations)
#   BENCH_SKIP_SERVICE=1      baselines only (while cmd/introspectd is not there)
#   BENCH_INTROSPECTD=PATH    measure this introspectd binary instead of building ./cmd/introspectd
#   BENCH_PORT=18300          first of the loopback ports used
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-50}
HIT_PAIRS=${BENCH_HIT_PAIRS:-3}
OPEN_PAIRS=${BENCH_OPEN_PAIRS:-8}
CONTROL_PAIRS=${BENCH_CONTROL_PAIRS:-6}
MATCHED_PAIRS=${BENCH_MATCHED_PAIRS:-4}
SLICE=${BENCH_SLICE:-250ms}
TOKENS=${BENCH_TOKENS:-10000}
GARBAGE_REQUESTS=${BENCH_GARBAGE_REQUESTS:-1300000}
GARBAGE_DURATION=${BENCH_GARBAGE_DURATION:-120s}
MEMORY_TOKENS=${BENCH_MEMORY_TOKENS:-1000000}
MISS_ALGS=${BENCH_MISS_ALGS:-RS256 PS256 ES256 EdDSA}
PPROF=${BENCH_PPROF:-1}
SKIP_SERVICE=${BENCH_SKIP_SERVICE:-0}
INTROSPECTD=${BENCH_INTROSPECTD:-}
PORT=${BENCH_PORT:-18300}
PORT_FIXED=$PORT PORT_NETHTTP=$((PORT + 1)) PORT_OURS=$((PORT + 2)) PORT_PPROF=$((PORT + 3)) PORT_FIXED2=$((PORT + 4)) PORT_MATCHED=$((PORT + 5))

STAMP=$(date -u +%Y-%m-%d-%H%M)
OUT=bench/results/tmp/$STAMP
REPORT=bench/results/$STAMP.md
mkdir -p "$OUT"
CMDS=$OUT/commands.txt
: >"$CMDS"

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }

# Pinning.
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	SRV=(taskset -c 0) CLI=(taskset -c 1)
else
	SRV=() CLI=()
	echo "bench/run.sh: $(nproc) CPU(s) or no taskset: server and load tool are not pinned" >&2
fi

# log records a command in commands.txt, quoted as a shell would need it.
log() {
	local q
	printf -v q '%q ' "$@"
	printf '%s\n' "${q% }" >>"$CMDS"
}
# run logs and runs a command.
run() {
	log "$@"
	"$@"
}

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT

# http_status PORT PATH prints the HTTP status of GET PATH; 000 when nothing answers.
http_status() {
	curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1$2" 2>/dev/null || true
}

# wait_ready PID PORT PATH NAME waits until GET PATH answers 200.
wait_ready() {
	local pid=$1 port=$2 path=$3 name=$4 i
	for i in $(seq 1 300); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$OUT/$name.log" >&2 || true
			die "$name exited during start-up (log: $OUT/$name.log)"
		fi
		[ "$(http_status "$port" "$path")" = 200 ] && return 0
		sleep 0.1
	done
	tail -n 30 "$OUT/$name.log" >&2 || true
	die "$name not ready on 127.0.0.1:$port$path after 30s (log: $OUT/$name.log)"
}

# start NAME PORT READY-PATH CMD... starts a pinned server; sets SERVER_PID.
start() {
	local name=$1 port=$2 path=$3
	shift 3
	[ "$(http_status "$port" /)" = 000 ] || die "port $port is already in use (set BENCH_PORT)"
	log "${SRV[@]}" "$@" '&'
	"${SRV[@]}" "$@" >"$OUT/$name.log" 2>&1 &
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
	wait_ready "$SERVER_PID" "$port" "$path" "$name"
}

stop() {
	kill "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
}

# load NAME OUTFILE ARGS... runs the pinned load tool against the server
# started last and writes OUTFILE.json.
load() {
	local name=$1 file=$2
	shift 2
	say "$file"
	run "${CLI[@]}" bin/introspect-bench -name "$name" -keys "$OUT/keys" -server-pid "$SERVER_PID" \
		-out "$OUT/$file.json" "$@"
}

say "machine"
uptime | tee -a "$OUT/uptime.txt" >&2
load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
	echo "bench/run.sh: warning: load average $load1 before the run: other work shares this machine, figures will be noisy" >&2
fi

say "build"
run go build -o bin/introspect-bench ./cmd/introspect-bench
if [ "$SKIP_SERVICE" != 1 ]; then
	if [ -n "$INTROSPECTD" ]; then
		[ -x "$INTROSPECTD" ] || die "BENCH_INTROSPECTD=$INTROSPECTD is not an executable"
		mkdir -p bin
		run cp "$INTROSPECTD" bin/introspectd
	else
		[ -f cmd/introspectd/main.go ] || die "no ./cmd/introspectd: the service is not on this branch yet (BENCH_SKIP_SERVICE=1 runs the baselines only)"
		run go build -o bin/introspectd ./cmd/introspectd || die "cannot build bin/introspectd from ./cmd/introspectd"
	fi
fi
run bin/introspect-bench init -dir "$OUT/keys" -listen "127.0.0.1:$PORT_OURS" >&2

COMMON=(-connections "$CONNS" -duration "$DURATION")
CRED=(-client-id bench -client-secret bench-secret)

say "raw verify (standard library) and the service's miss path, same tokens, same run"
# Rounds of one run each, raw and miss path in turn, rather than -count:
# with -count every raw run came first and every miss-path run 40 seconds
# later, and the machine's speed drifting in between moved the ratio by
# up to 10% (PS256 1.20x in 2026-12-06-0603.md, 1.14x in five alternating
# rounds in the same hour).
VERIFY_ROUNDS=7
run go test -c -o "$OUT/bench.test" ./bench/
: >"$OUT/rawverify.bench.txt"
for i in $(seq 1 "$VERIFY_ROUNDS"); do
	log "${SRV[@]}" "$OUT/bench.test" -test.run '^$' -test.bench 'BenchmarkRawVerify|BenchmarkMissPath' -test.benchmem -test.count 1 '>>' "$OUT/rawverify.bench.txt"
	"${SRV[@]}" "$OUT/bench.test" -test.run '^$' -test.bench 'BenchmarkRawVerify|BenchmarkMissPath' -test.benchmem -test.count 1 >>"$OUT/rawverify.bench.txt"
done
grep Benchmark "$OUT/rawverify.bench.txt" >&2 || true

# The fixed-body ceiling.
start fixed "$PORT_FIXED" /healthz bin/introspect-bench serve-baseline -kind fixed -listen "127.0.0.1:$PORT_FIXED"
URL=(-url "http://127.0.0.1:$PORT_FIXED")
load fixed hit-fixed "${URL[@]}" "${COMMON[@]}" -tokens "$TOKENS"
load fixed authz-fixed "${URL[@]}" "${COMMON[@]}" -tokens "$TOKENS" -scenario authz
stop

# What teams deploy instead: net/http + golang-jwt, verifying every request.
start nethttp-jwt "$PORT_NETHTTP" /healthz bin/introspect-bench serve-baseline -kind nethttp-jwt \
	-listen "127.0.0.1:$PORT_NETHTTP" -keys "$OUT/keys" "${CRED[@]}"
URL=(-url "http://127.0.0.1:$PORT_NETHTTP")
load nethttp-jwt hit-ES256-nethttp-jwt "${URL[@]}" "${COMMON[@]}" "${CRED[@]}" -tokens "$TOKENS" -alg ES256
load nethttp-jwt miss-ES256-nethttp-jwt "${URL[@]}" "${COMMON[@]}" "${CRED[@]}" -scenario miss -alg ES256 -pool 150000
load nethttp-jwt authz-nethttp-jwt "${URL[@]}" "${COMMON[@]}" -tokens "$TOKENS" -scenario authz
stop

if [ "$SKIP_SERVICE" != 1 ]; then
	# introspectd, a fresh process (and NATS store) per group of runs.
	n=0
	start_ours() {
		n=$((n + 1))
		local env=(env INTROSPECTD_LOG_LEVEL=warn "INTROSPECTD_NATS_DATA_DIR=$PWD/$OUT/nats-$n" "$@")
		[ "$PPROF" = 1 ] && env+=("INTROSPECTD_PPROF_LISTEN=127.0.0.1:$PORT_PPROF")
		start introspectd "$PORT_OURS" /readyz "${env[@]}" bin/introspectd -config "$OUT/keys/introspectd.yaml"
	}
	URL=(-url "http://127.0.0.1:$PORT_OURS" -metrics-url "http://127.0.0.1:$PORT_OURS/metrics")

	start_ours
	load introspectd hit-ES256-introspectd "${URL[@]}" "${COMMON[@]}" "${CRED[@]}" -tokens "$TOKENS" -alg ES256
	# The ceiling again, up beside introspectd (both pinned to the same
	# core; the idle one costs nothing) for the runs that compare the two.
	OURS_PID=$SERVER_PID
	start fixed "$PORT_FIXED" /healthz bin/introspect-bench serve-baseline -kind fixed -listen "127.0.0.1:$PORT_FIXED"
	FIXED_PID=$SERVER_PID
	# The closed-loop hit runs again, the two servers alternating: one run
	# of each swings by 15% or more on this shared machine, so the
	# throughput target is judged on the median of the pairs' ratios.
	for i in $(seq 2 "$HIT_PAIRS"); do
		SERVER_PID=$FIXED_PID
		load fixed "hit-fixed-$i" -url "http://127.0.0.1:$PORT_FIXED" "${COMMON[@]}" -tokens "$TOKENS"
		SERVER_PID=$OURS_PID
		load introspectd "hit-ES256-introspectd-$i" "${URL[@]}" "${COMMON[@]}" "${CRED[@]}" -tokens "$TOKENS" -alg ES256
	done
	# The ceiling's peak: the median of its closed-loop runs above.
	PEAK_OF="$OUT/hit-fixed.json"
	for i in $(seq 2 "$HIT_PAIRS"); do PEAK_OF="$PEAK_OF,$OUT/hit-fixed-$i.json"; done
	# The open loop at half the ceiling's peak:
	# OPEN_PAIRS paired runs, each one window in which the ceiling and
	# introspectd take turns of SLICE, with the same requests, so that the
	# shared machine's stalls fall on both alike. The report pools each
	# server's runs. The server that goes first (warms first, has the
	# first slice) swaps from one pair to the next: see RunPair.
	OPEN=("${COMMON[@]}" "${CRED[@]}" -tokens "$TOKENS" -rate-of "$PEAK_OF" -rate-fraction 0.5 -slice "$SLICE")
	OURS_PAIR=(-pair-url "http://127.0.0.1:$PORT_OURS" -pair-name introspectd -pair-server-pid "$OURS_PID"
		-pair-metrics-url "http://127.0.0.1:$PORT_OURS/metrics")
	FIXED_OPEN=(-url "http://127.0.0.1:$PORT_FIXED")
	FIXED_PAIR=(-pair-url "http://127.0.0.1:$PORT_FIXED" -pair-name fixed -pair-server-pid "$FIXED_PID")
	for i in $(seq 1 "$OPEN_PAIRS"); do
		if [ $((i % 2)) = 1 ]; then
			SERVER_PID=$OURS_PID
			load introspectd "open-hit-introspectd-$i" "${URL[@]}" "${OPEN[@]}" "${FIXED_PAIR[@]}" \
				-pair-out "$OUT/open-hit-fixed-$i.json"
		else
			SERVER_PID=$FIXED_PID
			load fixed "open-hit-fixed-$i" "${FIXED_OPEN[@]}" "${OPEN[@]}" "${OURS_PAIR[@]}" \
				-pair-out "$OUT/open-hit-introspectd-$i.json"
		fi
	done
	# The control: two ceilings paired alike, the noise a p99 ratio
	# carries in this run between identical servers.
	if [ "$CONTROL_PAIRS" -gt 0 ]; then
		start fixed-b "$PORT_FIXED2" /healthz bin/introspect-bench serve-baseline -kind fixed -listen "127.0.0.1:$PORT_FIXED2"
		FIXED2_PID=$SERVER_PID
		for i in $(seq 1 "$CONTROL_PAIRS"); do
			if [ $((i % 2)) = 1 ]; then
				SERVER_PID=$FIXED_PID
				load fixed-a "open-control-a-$i" -url "http://127.0.0.1:$PORT_FIXED" "${OPEN[@]}" \
					-pair-url "http://127.0.0.1:$PORT_FIXED2" -pair-name fixed-b -pair-server-pid "$FIXED2_PID" \
					-pair-out "$OUT/open-control-b-$i.json"
			else
				SERVER_PID=$FIXED2_PID
				load fixed-b "open-control-b-$i" -url "http://127.0.0.1:$PORT_FIXED2" "${OPEN[@]}" \
					-pair-url "http://127.0.0.1:$PORT_FIXED" -pair-name fixed-a -pair-server-pid "$FIXED_PID" \
					-pair-out "$OUT/open-control-a-$i.json"
			fi
		done
		SERVER_PID=$FIXED2_PID
		stop
	fi
	# The CPU-matched ceiling: the fixed server spending, on each request,
	# enough work to cost as much more CPU per request as introspectd took
	# in the pairs above, paired with introspectd alike. What is left of the
	# p99 ratio against it is not explained by CPU per request. Work costs
	# a server less than itself per request in the open loop (see
	# ScaleWork), so a probe, the fixed server with that much work paired
	# with the plain one, tells how much work it takes.
	if [ "$MATCHED_PAIRS" -gt 0 ] && [ "$OPEN_PAIRS" -gt 0 ]; then
		runs() { local f s=""; for f in "$OUT"/open-hit-"$1"-*.json; do s+=${s:+,}$f; done; echo "$s"; }
		GAP=(-a "$(runs introspectd)" -b "$(runs fixed)")
		log bin/introspect-bench cpu-gap "${GAP[@]}"
		gap=$(bin/introspect-bench cpu-gap "${GAP[@]}")
		if [ "$gap" = 0s ]; then
			# introspectd no costlier: the plain ceiling is the matched one.
			echo "bench/run.sh: introspectd took no more CPU per request than the ceiling: no CPU-matched ceiling to run" >&2
			MATCHED_PAIRS=0
		fi
	fi
	if [ "$MATCHED_PAIRS" -gt 0 ] && [ "$OPEN_PAIRS" -gt 0 ]; then
		start fixed-matched "$PORT_MATCHED" /healthz bin/introspect-bench serve-baseline -kind fixed -work "$gap" \
			-listen "127.0.0.1:$PORT_MATCHED"
		load fixed-matched open-probe-matched -url "http://127.0.0.1:$PORT_MATCHED" "${OPEN[@]}" \
			-pair-url "http://127.0.0.1:$PORT_FIXED" -pair-name fixed -pair-server-pid "$FIXED_PID" \
			-pair-out "$OUT/open-probe-fixed.json"
		stop
		PROBE=(-work "$gap" -probe "$OUT/open-probe-matched.json" -probe-base "$OUT/open-probe-fixed.json")
		log bin/introspect-bench cpu-gap "${GAP[@]}" "${PROBE[@]}"
		work=$(bin/introspect-bench cpu-gap "${GAP[@]}" "${PROBE[@]}")
		echo "bench/run.sh: introspectd took $gap more CPU per request than the ceiling; matching it takes $work of work" >&2
		start fixed-matched "$PORT_MATCHED" /healthz bin/introspect-bench serve-baseline -kind fixed -work "$work" \
			-listen "127.0.0.1:$PORT_MATCHED"
		MATCHED_PID=$SERVER_PID
		for i in $(seq 1 "$MATCHED_PAIRS"); do
			if [ $((i % 2)) = 1 ]; then
				SERVER_PID=$OURS_PID
				load introspectd "open-matched-introspectd-$i" "${URL[@]}" "${OPEN[@]}" \
					-pair-url "http://127.0.0.1:$PORT_MATCHED" -pair-name fixed-matched -pair-server-pid "$MATCHED_PID" \
					-pair-out "$OUT/open-matched-fixed-$i.json"
			else
				SERVER_PID=$MATCHED_PID
				load fixed-matched "open-matched-fixed-$i" -url "http://127.0.0.1:$PORT_MATCHED" "${OPEN[@]}" "${OURS_PAIR[@]}" \
					-pair-out "$OUT/open-matched-introspectd-$i.json"
			fi
		done
		SERVER_PID=$MATCHED_PID
		stop
	fi
	SERVER_PID=$FIXED_PID
	stop
	SERVER_PID=$OURS_PID
	if [ "$PPROF" = 1 ]; then
		# Profiles of the hit path, taken during an extra hit run that is not
		# reported (profiling costs a little); allocations are the delta over
		# the same 8 seconds, so earlier runs do not show.
		say "profile of the hit path (not a measured run)"
		PPROF_TMPDIR=$(mktemp -d) # pprof keeps its own copy of what it fetches there
		export PPROF_TMPDIR
		pp=http://127.0.0.1:$PORT_PPROF/debug/pprof
		run "${CLI[@]}" bin/introspect-bench -quiet -keys "$OUT/keys" "${URL[@]}" "${CRED[@]}" -connections "$CONNS" \
			-duration 12s -tokens "$TOKENS" >/dev/null &
		prof_load=$!
		sleep 2 # past minting, warming and warm-up: the profile sees hits only
		log "${CLI[@]}" go tool pprof -proto -seconds 8 "$pp/profile" '>' "$OUT/hit-cpu.pb.gz" '&'
		"${CLI[@]}" go tool pprof -proto -seconds 8 "$pp/profile" >"$OUT/hit-cpu.pb.gz" 2>>"$OUT/pprof.log" &
		prof_cpu=$!
		log "${CLI[@]}" go tool pprof -proto -seconds 8 "$pp/allocs" '>' "$OUT/hit-allocs.pb.gz"
		"${CLI[@]}" go tool pprof -proto -seconds 8 "$pp/allocs" >"$OUT/hit-allocs.pb.gz" 2>>"$OUT/pprof.log" &
		prof_mem=$!
		wait "$prof_load" || echo "bench/run.sh: the load of the profile run failed" >&2
		if wait "$prof_cpu" && wait "$prof_mem"; then
			run go tool pprof -top -nodecount 25 bin/introspectd "$OUT/hit-cpu.pb.gz" >"$OUT/pprof-hit-cpu-flat.txt" 2>>"$OUT/pprof.log"
			run go tool pprof -top -cum -nodecount 25 bin/introspectd "$OUT/hit-cpu.pb.gz" >"$OUT/pprof-hit-cpu-cum.txt" 2>>"$OUT/pprof.log"
			run go tool pprof -top -nodecount 25 -sample_index=alloc_space bin/introspectd "$OUT/hit-allocs.pb.gz" \
				>"$OUT/pprof-hit-allocs.txt" 2>>"$OUT/pprof.log"
		else
			echo "bench/run.sh: profiling failed (see $OUT/pprof.log)" >&2
		fi
	fi
	load introspectd hit-zipf-introspectd "${URL[@]}" "${COMMON[@]}" "${CRED[@]}" -tokens 100000 -zipf 1.01
	load introspectd authz-introspectd "${URL[@]}" "${COMMON[@]}" -tokens "$TOKENS" -scenario authz
	load introspectd mixed-introspectd "${URL[@]}" "${COMMON[@]}" "${CRED[@]}" -tokens "$TOKENS" -scenario mixed -hit-ratio 0.95
	load introspectd revoke-storm-introspectd "${URL[@]}" "${COMMON[@]}" "${CRED[@]}" -tokens "$TOKENS" -scenario revoke-storm -revoke-rate 100
	for alg in $MISS_ALGS; do
		# An RSA signature costs the load tool about 1 ms to mint, so its
		# pool of fresh tokens stops at 20,000: at 13-19k misses/s a 10 s run
		# used it up in the warm-up and measured only 0.1-0.6 s. A short run
		# that fits the pool measures the server's CPU per miss properly.
		fit=()
		case $alg in RS* | PS*) fit=(-warmup 100ms -duration 800ms) ;; esac
		load introspectd "miss-$alg-introspectd" "${URL[@]}" "${COMMON[@]}" "${CRED[@]}" -scenario miss -alg "$alg" "${fit[@]}"
	done
	stop

	# Garbage flood: hot tokens must stay cached (fresh process).
	start_ours
	load introspectd garbage-introspectd "${URL[@]}" -connections "$CONNS" -duration "$GARBAGE_DURATION" "${CRED[@]}" \
		-max-requests "$GARBAGE_REQUESTS" -tokens "$TOKENS" -scenario garbage -hit-ratio 0.2
	stop

	# Memory: a million cached tokens (fresh process; RSS before and after
	# warming). Sized the way the README tells operators to: a cache
	# budget of 1.5 KiB a token, and GOMEMLIMIT at that budget so the
	# garbage collector does not let the heap double.
	if [ "$MEMORY_TOKENS" -gt 0 ]; then
		budget=$((MEMORY_TOKENS * 1536))
		start_ours "INTROSPECTD_CACHE_MAX_BYTES=$budget" "GOMEMLIMIT=$budget"
		load introspectd "hit-${MEMORY_TOKENS}-introspectd" "${URL[@]}" "${COMMON[@]}" "${CRED[@]}" \
			-tokens "$MEMORY_TOKENS" -alg EdDSA -duration 5s
		stop
	fi

	# With the cache's heap and GC cost per token (BenchmarkCachedTokenBytes).
	say "hit-path Go benchmarks"
	GOBENCH='Hit|Miss|BenchmarkKey|BenchmarkCachedTokenBytes'
	log "${SRV[@]}" go test -run '^$' -bench "$GOBENCH" -benchmem -count 3 ./introspect/ ./cache/
	"${SRV[@]}" go test -run '^$' -bench "$GOBENCH" -benchmem -count 3 ./introspect/ ./cache/ >"$OUT/hitpath.bench.txt" ||
		echo "bench/run.sh: hit-path benchmarks failed (see $OUT/hitpath.bench.txt)" >&2
fi

say "report"
run bin/introspect-bench report -in "$OUT" -out "$REPORT"
cp "$REPORT" bench/results/latest.md
echo "bench/run.sh: wrote $REPORT and bench/results/latest.md (raw results in $OUT)" >&2
