#!/usr/bin/env bash
# Image writer bench: a 4 GiB raw image (3 GiB random + 1 GiB zeros) and the same
# image as qcow2, served over loopback HTTP, written to a file disk by the agent's
# writer, side by side with `curl | dd` (raw) and `curl` + `qemu-img convert`
# (qcow2, download included) on the same files. Prints wall time, throughput and
# peak RSS (VmHWM for the writer, GNU time's max RSS for the baselines).
#
#   cargo build --release -p ironic-deploy-agent --example image_write_bench
#   ironic-deploy-agent/benches/image_write.sh [WORKDIR]   # default /tmp/agent-bench
#
# Needs curl, qemu-img (qemu-utils), GNU time, ~20 GiB free in WORKDIR. Only loopback.
set -euo pipefail
W=${1:-/tmp/agent-bench}
BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release/examples/image_write_bench}
RUNS=${RUNS:-1}
for t in curl qemu-img /usr/bin/time; do
    command -v "$t" >/dev/null || { echo "missing $t: apt-get install curl qemu-utils time" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "build first: cargo build --release -p ironic-deploy-agent --example image_write_bench" >&2; exit 1; }
mkdir -p "$W"
if [ ! -f "$W/img.raw" ]; then
    head -c 3G /dev/urandom > "$W/img.raw.tmp" && truncate -s 4G "$W/img.raw.tmp" && mv "$W/img.raw.tmp" "$W/img.raw"
fi
[ -f "$W/img.qcow2" ] || qemu-img convert -f raw -O qcow2 "$W/img.raw" "$W/img.qcow2"
[ -f "$W/sums" ] || (cd "$W" && sha256sum img.raw img.qcow2 > sums)
SUM_RAW=$(awk '$2=="img.raw"{print $1}' "$W/sums")
SUM_QCOW=$(awk '$2=="img.qcow2"{print $1}' "$W/sums")
SIZE=$(stat -c %s "$W/img.raw")
DISK="$W/disk"
fresh() { rm -f "$DISK"; truncate -s $((SIZE + (1 << 30))) "$DISK"; }

"$BIN" serve "$W" > "$W/url" &
SRV=$!
trap 'kill $SRV 2>/dev/null; rm -f "$DISK" "$W/dl.qcow2"' EXIT
for _ in $(seq 50); do [ -s "$W/url" ] && break; sleep 0.1; done
URL=$(cat "$W/url")

now() { date +%s.%N; }
dt() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN{printf "%.2f s = %.0f MiB/s", s, b/s/1048576}'; }
rss() { awk '/Maximum resident/{printf "%.1f MiB", $NF/1024}' "$1"; }

for run in $(seq "$RUNS"); do
    echo "== run $run (image $SIZE bytes, $URL)"
    # raw: the agent's writer
    fresh
    "$BIN" write "$URL/img.raw" raw "$SUM_RAW" "$DISK"
    # raw: curl | dd
    fresh
    t0=$(now)
    /usr/bin/time -v -o "$W/t.curl" curl -sf "$URL/img.raw" \
        | /usr/bin/time -v -o "$W/t.dd" dd of="$DISK" bs=1M iflag=fullblock conv=notrunc,fsync status=none
    t1=$(now)
    echo "curl | dd raw: $(rate "$SIZE" "$(dt $t0 $t1)"), peak RSS curl $(rss "$W/t.curl"), dd $(rss "$W/t.dd")"
    # qcow2: the agent's writer (converts while streaming)
    fresh
    "$BIN" write "$URL/img.qcow2" qcow2 "$SUM_QCOW" "$DISK"
    # qcow2: curl to a file, then qemu-img convert onto the disk, fsync
    fresh
    rm -f "$W/dl.qcow2"
    t0=$(now)
    /usr/bin/time -v -o "$W/t.curl" curl -sf -o "$W/dl.qcow2" "$URL/img.qcow2"
    t1=$(now)
    /usr/bin/time -v -o "$W/t.qemu" qemu-img convert -n -f qcow2 -O raw "$W/dl.qcow2" "$DISK"
    sync "$DISK"
    t2=$(now)
    echo "curl + qemu-img convert qcow2: $(rate "$SIZE" "$(dt $t0 $t2)") (download $(dt $t0 $t1) s, convert+sync $(dt $t1 $t2) s), peak RSS curl $(rss "$W/t.curl"), qemu-img $(rss "$W/t.qemu")"
    # qcow2: qemu-img convert straight from HTTP (its curl block driver), if built in
    fresh
    t0=$(now)
    if /usr/bin/time -v -o "$W/t.qemu" qemu-img convert -n -f qcow2 -O raw "json:{\"file.driver\":\"http\",\"file.url\":\"$URL/img.qcow2\"}" "$DISK" 2>/dev/null; then
        sync "$DISK"
        t1=$(now)
        echo "qemu-img convert from http qcow2: $(rate "$SIZE" "$(dt $t0 $t1)"), peak RSS $(rss "$W/t.qemu")"
    else
        echo "qemu-img convert from http: not available (qemu-block-extra)"
    fi
done
