#!/usr/bin/env bash
# First start of `make demo` from a fresh clone: the seconds until the demo server answers HTTP, and the lines it
# logged until then, for an old commit (OLD_REV, default 5d0c24e, before issue 13) and for this working tree (its
# tracked and new, not ignored files: what a commit of them would clone), one after the other in temporary
# directories, each with a new virtualenv.
#
#   bench/first_start.sh            cold: pip and uv start with empty caches of their own, so both download everything
#   bench/first_start.sh --warm     both use the machine's pip and uv caches as they are
#
# The old state runs first. Other jobs on the machine slow both sides alike only if they run throughout: run it on an
# otherwise idle machine for comparable numbers. KEEP=1 keeps the temporary directory (copies, logs) and says where.
set -euo pipefail

OLD_REV=${OLD_REV:-5d0c24e}
TIMEOUT=${TIMEOUT:-1800}  # seconds a side may take before it counts as failed
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/first-start.XXXXXX)
server=""

cleanup() {
    if [ -n "$server" ]; then kill -- "-$server" 2>/dev/null || true; fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

if [ "${1:-}" = "--warm" ]; then
    caches="the machine's pip and uv caches as they are"
else
    export PIP_CACHE_DIR=$WORK/cache/pip UV_CACHE_DIR=$WORK/cache/uv
    caches="empty pip and uv caches"
fi

mkdir "$WORK/old" "$WORK/new"
git -C "$REPO" archive "$OLD_REV" | tar -x -C "$WORK/old"
git -C "$REPO" ls-files -z --cached --others --exclude-standard \
    | rsync -a --from0 --files-from=- --ignore-missing-args "$REPO/" "$WORK/new/"

# A free port for each side, so that a server left over from elsewhere cannot answer for the one being timed.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run SIDE: start `make demo` in its copy, in a process group of its own so that the server can be stopped with make;
# wait for the first HTTP answer; set seconds and lines.
run() {
    local side=$1 port log start
    port=$(free_port)
    log=$WORK/$side.log
    start=$EPOCHREALTIME
    setsid make -C "$WORK/$side" --no-print-directory demo PORT="$port" >"$log" 2>&1 </dev/null &
    server=$!
    until curl -s -o /dev/null "http://127.0.0.1:$port/"; do
        if ! kill -0 "$server" 2>/dev/null; then
            echo "$side: make demo ended before the server answered; its log:" >&2
            tail -n 30 "$log" >&2
            exit 1
        fi
        if (( ${EPOCHREALTIME%.*} - ${start%.*} > TIMEOUT )); then
            echo "$side: no answer within $TIMEOUT s" >&2
            exit 1
        fi
        sleep 0.2
    done
    seconds=$(python3 -c "print(f'{$EPOCHREALTIME - $start:.0f}')")
    lines=$(wc -l <"$log")
    kill -- "-$server"
    wait "$server" 2>/dev/null || true
    server=""
}

echo "first start of make demo: $caches; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
run old
old_seconds=$seconds old_lines=$lines
echo "old ($OLD_REV):       ${old_seconds} s, $old_lines log lines"
run new
echo "new (working tree): ${seconds} s, $lines log lines"
python3 -c "print(f'new/old: {$seconds / $old_seconds:.2f} of the time, {$lines / $old_lines:.2f} of the log lines')"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "the new side's log:"
sed 's/^/  | /' "$WORK/new.log"
