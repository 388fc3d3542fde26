#!/usr/bin/env bash
# The free-space floor (DESIGN "Free-space floor", issue 4) on real tmpfs and
# loop ext4 filesystems: the incident replayed at 1/1000 scale, a slow save
# that needs room while it is written, eviction order, hysteresis and the
# protected set, a 100% full disk, -1 and -n, the metrics file and STATUS=.
#
# Needs root (mount). Sizes are bytes unless named *_MIB. lib.sh runs each
# test with `set -e` inside a `||` list, where bash ignores it: every check
# here fails explicitly.
. "$(dirname "$0")/../lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
WRITER=("$PY" "$HERE/floor_writer.py")
FILL=("$PY" "$HERE/floor_fill.py")
MIB=1048576

# --- helpers ---

mount_tmpfs() { # DIR SIZE
        mkdir -p "$1"
        mount -t tmpfs -o "size=$2" tmpfs "$1" || fail "cannot mount a tmpfs on $1"
}

# A loop ext4 with no root reserve (-m 0): f_bavail is then what our root
# writers can get too, so "full" means full for them.
mount_ext4() { # DIR SIZE_MIB
        truncate -s "${2}M" "$T/ext4.img" || fail "truncate"
        mkfs.ext4 -q -F -m 0 "$T/ext4.img" || fail "mkfs.ext4"
        mkdir -p "$1"
        mount -o loop "$T/ext4.img" "$1" || fail "cannot mount a loop ext4 on $1"
}

mount_fs() { # FSTYPE DIR SIZE_MIB
        case $1 in
        tmpfs) mount_tmpfs "$2" "${3}m" ;;
        ext4) mount_ext4 "$2" "$3" ;;
        *) fail "unknown filesystem $1" ;;
        esac
}

# Free bytes as ckptd counts them: f_bavail * f_frsize.
free_bytes() {
        local a s
        read -r a s < <(stat -f -c '%a %S' "$1")
        echo $((a * s))
}

# fill FILE FREE: other data on FILE's filesystem, leaving FREE bytes (0: full).
fill() {
        "${FILL[@]}" "$1" "$2" >/dev/null || fail "cannot leave $2 bytes free beside $1"
}

# ck EPOCH LOSS: a Lightning ModelCheckpoint name.
ck() {
        echo "epoch=$1-step=$((($1 + 1) * 100))-val_loss=$2.ckpt"
}

# old_ckpt DIR EPOCH LOSS SIZE_KIB: a checkpoint written an hour ago (settled).
old_ckpt() {
        mkfile "$1/$(ck "$2" "$3")" "$4"
        touch -d "-1 hour" "$1/$(ck "$2" "$3")"
}

# start_ckptd LOG ARGS...: the daemon in the background; returns once it watches.
start_ckptd() {
        local log=$1
        shift
        "$CKPTD" --log-target stderr "$@" 2>"$log" &
        CKPTD_PID=$!
        echo "$CKPTD_PID" >>"$T/pids"
        wait_for 20 grep -q '^ckptd: watching [0-9]* director' "$log" || fail "ckptd did not start: $(cat "$log")"
}

# holds_only DIR NAME...: DIR holds exactly these names (a condition to wait for).
holds_only() {
        local dir=$1
        shift
        [ "$(ls_names "$dir")" = "$(printf '%s\n' "$@" | LC_ALL=C sort)" ]
}

exited() { # PID: gone, or a zombie waiting for us
        [ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

# no_sanitizer_reports FILE...: an ASan/UBSan build reports here (UBSan
# goes on after a report, so the exit status alone would not tell).
no_sanitizer_reports() {
        local f
        for f in "$@"; do
                ! grep -q -e 'runtime error' -e 'Sanitizer' "$f" || fail "sanitizer report in $f: $(cat "$f")"
        done
}

# stop_ckptd: SIGTERM, and it must exit 0.
stop_ckptd() {
        local rc=0
        kill -TERM "$CKPTD_PID" || fail "ckptd is not running"
        wait_for 20 exited "$CKPTD_PID" || fail "ckptd did not stop on SIGTERM"
        wait "$CKPTD_PID" || rc=$?
        sed -i "/^$CKPTD_PID\$/d" "$T/pids" # reaped: its pid may be reused
        [ "$rc" = 0 ] || fail "ckptd exited $rc on SIGTERM: $(tail -n 20 "$LOG")"
        no_sanitizer_reports "$LOG"
}

alive() {
        kill -0 "$CKPTD_PID" 2>/dev/null && ! exited "$CKPTD_PID" || fail "ckptd died: $(tail -n 20 "$1")"
}

# A probe watch on the same filesystem (pattern p_{step}, keep_last 1) syncs
# with the daemon: a new p_N asks for a floor check at once (IN_CREATE of a
# candidate); p_N-1 is deleted only later, after p_N settled. So once p_N-1
# is gone, a floor check that saw everything done before p_N has finished.
# PROBE_DIR holds p_0 before the daemon starts.
PROBE_N=0
probe() {
        PROBE_N=$((PROBE_N + 1))
        : >"$PROBE_DIR/p_$PROBE_N" || fail "cannot create a probe on a full disk"
        wait_for 20 test ! -e "$PROBE_DIR/p_$((PROBE_N - 1))" || fail "probe $PROBE_N not handled: $(tail -n 20 "$LOG")"
}

# line_of PATTERN FILE: number of the first line matching, or fail.
line_of() {
        local n
        n=$(grep -n -- "$1" "$2" | head -n1 | cut -d: -f1)
        [ -n "$n" ] || fail "'$1' not in $2: $(cat "$2")"
        echo "$n"
}

evicted() { # FILE LOG: ckptd evicted FILE for the floor
        assert_grep "evicted $1 (floor, " "$2"
}

count() { # PATTERN FILE
        grep -c -- "$1" "$2" || true
}

at_least() { [ "$(count "$2" "$3")" -ge "$1" ]; } # N PATTERN FILE

figure() { # what the report quotes; kept in the log, and in $FLOOR_FIGURES if set
        echo "figure: $*" >&2
        if [ -n "${FLOOR_FIGURES:-}" ]; then echo "$*" >>"$FLOOR_FIGURES"; fi
}

# --- 1. the incident at 1/1000 scale ---
#
# The incident: a 1.8 TB disk nearly full of other data, a run saving 6.9 GB
# every epoch with keep-all, the epoch-16 save failing with ENOSPC. Here: a
# 1.8 GB tmpfs, 6.9 MB checkpoints, 20 epochs; in units of one checkpoint
# (C = 6.9 MB) the disk starts with 8.7 C free, and before the saves of
# epochs 10..14 other data grows by 0.84 C each (4.2 C in all) to leave 4.5 C.
#  - keep-all needs 20 C: fails at epoch 8, before other data even grows;
#  - the policy alone (top 3 + last) keeps 4 C and writes a fifth: 5 C > 4.5 C,
#    so it fails once other data has grown (at epoch 14);
#  - with the floor (headroom 2: 2 C free after every check) the policy's
#    ranks 2 and 3 (epochs 7, 9, 11 when they are) must be evicted, and every
#    save fits: best + newest + the save being written = 3 C <= 4.5 C, with
#    room for one save that is still settling. Each growth step (0.84 C) is
#    less than the C the floor keeps spare beyond the next save.
# The writer "trains" 2 s per epoch; ckptd's settle is 0.5 s.
C=6900000
INCIDENT_DISK=1800000000
INCIDENT_FREE=$((C * 87 / 10))
INCIDENT_GROW=$((C * 84 / 100))
INCIDENT_LOSSES=1.00,0.80,0.65,0.55,0.50,0.46,0.47,0.44,0.45,0.43,0.48,0.42,0.49,0.51,0.41,0.50,0.52,0.47,0.53,0.54
INCIDENT_FLAGS=(--preset lightning --monitor val_loss --keep-top-k 3 --keep-last 1 --settle 0.5)

incident_disk() {
        mount_tmpfs "$T/disk" "$INCIDENT_DISK"
        mkdir "$T/disk/runs" "$T/disk/other"
        fill "$T/disk/other/data" "$INCIDENT_FREE"
}

incident_writer() { # INTERVAL: the 20 epochs; output in writer.out, exit status returned
        "${WRITER[@]}" "$T/disk/runs" --size "$C" --losses "$INCIDENT_LOSSES" --interval "$1" \
                --grow "$T/disk/other/data" --grow-at 10,11,12,13,14 --grow-bytes "$INCIDENT_GROW" >writer.out 2>&1
}

test_incident_keep_all_without_ckptd_fails_with_ENOSPC() {
        need_root
        local rc=0
        incident_disk
        incident_writer 0 || rc=$?
        [ "$rc" = 1 ] || fail "keep-all did not fail with ENOSPC (exit $rc): $(cat writer.out)"
        assert_grep '^ENOSPC epoch=' writer.out
        figure "keep-all without ckptd: $(grep -c '^saved' writer.out) saves, then $(grep ENOSPC writer.out)"
}

test_incident_policy_without_floor_fails_with_ENOSPC() {
        need_root
        local rc=0 e
        incident_disk
        LOG=$T/ckptd.log
        start_ckptd "$LOG" -w "$T/disk/runs" "${INCIDENT_FLAGS[@]}"
        incident_writer 2 || rc=$?
        [ "$rc" = 1 ] || fail "top 3 + last without a floor did not fail with ENOSPC (exit $rc): $(cat writer.out)"
        e=$(sed -n 's/^ENOSPC epoch=\([0-9]*\) .*/\1/p' writer.out)
        # it is the other data growing that breaks it, not the policy itself
        [ -n "$e" ] && [ "$e" -ge 10 ] || fail "failed before other data grew: $(cat writer.out)"
        assert_no_grep "(floor, " "$LOG"
        figure "top 3 + last without the floor: $(grep -c '^saved' writer.out) saves, then $(grep ENOSPC writer.out)"
        stop_ckptd
}

test_incident_with_ckptd_every_save_succeeds() {
        need_root
        local rc=0 best newest
        incident_disk
        LOG=$T/ckptd.log
        start_ckptd "$LOG" -w "$T/disk/runs" "${INCIDENT_FLAGS[@]}" --headroom 2
        incident_writer 2 || rc=$?
        [ "$rc" = 0 ] || fail "a save failed (exit $rc): $(cat writer.out)
$(tail -n 30 "$LOG")"
        [ "$(grep -c '^saved' writer.out)" = 20 ] || fail "not 20 saves: $(cat writer.out)"
        # the floor leaves room for best + newest only: epoch 14 (0.41) and 19
        best=$(ck 14 0.4100)
        newest=$(ck 19 0.5400)
        wait_for 20 holds_only "$T/disk/runs" "$best" "$newest" ||
                fail "expected only $best and $newest, found: $(ls "$T/disk/runs")
$(tail -n 30 "$LOG")"
        # kept by the policy (top 3 at the time), evicted by the floor
        evicted "$T/disk/runs/$(ck 7 0.4400)" "$LOG"
        evicted "$T/disk/runs/$(ck 9 0.4300)" "$LOG"
        evicted "$T/disk/runs/$(ck 11 0.4200)" "$LOG"
        # best + newest + the save being written always fit with 1.5 C to
        # spare: the floor is never short, though each save takes 1 C of it
        assert_no_grep "short of the floor" "$LOG"
        [ "$(free_bytes "$T/disk")" -ge $((2 * C)) ] || fail "floor not met at the end: $(free_bytes "$T/disk")"
        alive "$LOG"
        figure "with ckptd: 20/20 saves; $(count '(policy, ' "$LOG") deleted by policy, $(count '(floor, ' "$LOG") evicted by the floor" \
                "($(grep '(floor, ' "$LOG" | sed 's/.*runs\/\(epoch=[0-9]*\)-.*/\1/' | paste -sd' ')); $(count 'short of the floor' "$LOG") transient floor-unmet," \
                "$(free_bytes "$T/disk") bytes free at the end of $(($(stat -f -c '%b * %S' "$T/disk")))" \
                "($(stat -c %s "$T/disk/other/data") of other data), kept: $(ls "$T/disk/runs" | paste -sd' ')"
        stop_ckptd
}

# --- 2. a large save written slowly gets room while it is written ---
#
# 64 MiB tmpfs; six 4 MiB checkpoints, all kept (top 5 + last); floor
# 2 x 4 MiB; 9 MiB free. A 16 MiB save written in 32 chunks over 6 s can only
# finish if ckptd evicts ranks 5, 4, ... while it is being written.
slow_save() { # [--tmp]: written in place, or under a temporary name then renamed
        need_root
        local rc=0 i losses=(0.1000 0.2000 0.3000 0.4000 0.5000 0.9000) first last big
        mount_tmpfs "$T/disk" 64m
        mkdir "$T/disk/runs" "$T/disk/other"
        for i in "${!losses[@]}"; do old_ckpt "$T/disk/runs" "$i" "${losses[$i]}" 4096; done
        fill "$T/disk/other/data" $((9 * MIB))
        big=$(ck 6 0.6000)
        # without ckptd the save cannot fit: the scenario is real
        "${WRITER[@]}" "$T/disk/runs" --size $((16 * MIB)) --losses 0.6 --first-epoch 6 >control.out 2>&1 || rc=$?
        [ "$rc" = 1 ] || fail "the 16 MiB save fitted without ckptd: $(cat control.out)"
        rm -f "$T/disk/runs/$big"
        [ "$(free_bytes "$T/disk")" -ge $((8 * MIB)) ] || fail "floor not met before the save"

        LOG=$T/ckptd.log
        start_ckptd "$LOG" -w "$T/disk/runs" --preset lightning --monitor val_loss --keep-top-k 5 \
                --keep-last 1 --headroom 2 --settle 0.5
        rc=0
        "${WRITER[@]}" "$T/disk/runs" --size $((16 * MIB)) --losses 0.6 --first-epoch 6 \
                --chunk $((MIB / 2)) --chunk-delay 0.2 "$@" >writer.out 2>&1 || rc=$?
        [ "$rc" = 0 ] || fail "the slow save failed (exit $rc): $(cat writer.out)
$(cat "$LOG")"
        first=$(sed -n 's|^chunk 1/32 present \([0-9]*\) .*|\1|p' writer.out)
        last=$(grep '^chunk 32/32 present ' writer.out) || fail "no last chunk: $(cat writer.out)"
        [ "$first" = 6 ] || fail "expected 6 checkpoints at the first chunk: $(cat writer.out)"
        # before the last chunk: fewer checkpoints, the best and the newest among them
        [ "$(echo "$last" | cut -d' ' -f4)" -lt "$first" ] ||
                fail "no eviction before the last chunk: $(cat writer.out)
$(cat "$LOG")"
        case " $last " in *" $(ck 0 0.1000) "*) ;; *) fail "the best was evicted while written: $last" ;; esac
        case " $last " in *" $(ck 5 0.9000) "*) ;; *) fail "the newest was evicted while written: $last" ;; esac
        assert_grep "(floor, " "$LOG"
        # once written it is the largest (floor 32 MiB, unmet): the best and it stay
        wait_for 20 holds_only "$T/disk/runs" "$(ck 0 0.1000)" "$big" ||
                fail "the new save's floor was not applied: $(ls "$T/disk/runs")"
        [ "$(stat -c %s "$T/disk/runs/$big")" = $((16 * MIB)) ] || fail "the save is truncated"
        figure "slow save: checkpoints present at chunk 1/32: $first, at chunk 32/32: $(echo "$last" | cut -d' ' -f4);" \
                "floor evictions in all: $(count '(floor, ' "$LOG")"
        alive "$LOG"
        stop_ckptd
}

test_slow_large_save_gets_room_while_written() {
        slow_save
}

# The same save under a temporary name (Lightning's and HF's tmp + rename):
# not a checkpoint until renamed, but it fills the disk all the same.
test_slow_save_under_tmp_name_gets_room_while_written() {
        slow_save --tmp
}

# --- 3. eviction order, hysteresis, the protected set, a 100% full disk ---
#
# Three runs of four 2 MiB checkpoints (epoch: val_loss; step = 100 (epoch+1)):
#   a: 0: 0.2000 (rank 2), 1: 0.1000 (best), 2: 0.3000 (rank 3), 3: 0.9000 (newest)
#   b: 0: 0.1500 (best), 1: 0.2500 (rank 2), 2: 0.3500 (rank 3), 3: 0.8000 (newest)
#   c: 0: 0.0500 (best), 1: 0.4500 (rank 3, pinned by a .keep), 2: 0.4000 (rank 2),
#      3: 0.7000 (newest)
# The policy (top 3 + last) keeps all twelve. min_free 8 MiB, target 11 MiB.
# Evictable, worst first: rank 3s (a2, b2) before any rank 2, though every
# rank 2 but c's is older than them; then rank 2s, older first (a0, b1, c2).
floor_order_on() { # FSTYPE
        need_root
        local m=$T/mnt f base
        mount_fs "$1" "$m" 96
        mkdir -p "$m/runs/a" "$m/runs/b" "$m/runs/c" "$m/probe" "$m/other"
        old_ckpt "$m/runs/a" 0 0.2000 2048
        old_ckpt "$m/runs/a" 1 0.1000 2048
        old_ckpt "$m/runs/a" 2 0.3000 2048
        old_ckpt "$m/runs/a" 3 0.9000 2048
        old_ckpt "$m/runs/b" 0 0.1500 2048
        old_ckpt "$m/runs/b" 1 0.2500 2048
        old_ckpt "$m/runs/b" 2 0.3500 2048
        old_ckpt "$m/runs/b" 3 0.8000 2048
        old_ckpt "$m/runs/c" 0 0.0500 2048
        old_ckpt "$m/runs/c" 1 0.4500 2048
        old_ckpt "$m/runs/c" 2 0.4000 2048
        old_ckpt "$m/runs/c" 3 0.7000 2048
        touch "$m/runs/c/$(ck 1 0.4500).keep"
        PROBE_DIR=$m/probe
        touch -d "-1 hour" "$PROBE_DIR/p_0"
        cat >ckptd.conf <<EOC
check_interval = 1;
metrics_file = "$T/metrics.prom";
watch = (
  { path = "$m/runs"; preset = "lightning"; monitor = "val_loss"; mode = "min";
    keep_top_k = 3; keep_last = 1; settle = 0.2; min_free = "8M"; target_free = "11M"; },
  { path = "$m/probe"; pattern = "p_{step}"; keep_top_k = 0; keep_last = 1; settle = 0.2; }
);
EOC
        f=$m/other/data
        base=$m/runs
        # above the target: nothing to do
        fill "$f" $((12 * MIB))
        LOG=$T/ckptd.log
        start_ckptd "$LOG" -c ckptd.conf
        probe
        assert_no_grep "\(deleted\|evicted\) $base/" "$LOG"
        [ "$(ls "$base"/*/*.ckpt | wc -l)" = 12 ] || fail "something was deleted above the target"

        # below the floor: evict to the target, worst first
        fill "$f" $((6 * MIB))
        probe
        assert_names "$base/a" "$(ck 1 0.1000)" "$(ck 3 0.9000)"
        assert_names "$base/b" "$(ck 0 0.1500)" "$(ck 1 0.2500)" "$(ck 3 0.8000)"
        assert_names "$base/c" "$(ck 0 0.0500)" "$(ck 1 0.4500)" "$(ck 1 0.4500).keep" "$(ck 2 0.4000)" "$(ck 3 0.7000)"
        evicted "$base/a/$(ck 2 0.3000)" "$LOG"
        evicted "$base/b/$(ck 2 0.3500)" "$LOG"
        evicted "$base/a/$(ck 0 0.2000)" "$LOG"
        [ "$(line_of "/a/$(ck 0 0.2000) (floor" "$LOG")" -gt "$(line_of "/a/$(ck 2 0.3000) (floor" "$LOG")" ] &&
                [ "$(line_of "/a/$(ck 0 0.2000) (floor" "$LOG")" -gt "$(line_of "/b/$(ck 2 0.3500) (floor" "$LOG")" ] ||
                fail "a rank 2 went before a rank 3: $(grep floor "$LOG")"
        [ "$(free_bytes "$m")" -ge $((11 * MIB)) ] || fail "free $(free_bytes "$m") below the target after evicting"

        # between floor and target: hysteresis, nothing more goes
        fill "$f" $((9 * MIB))
        probe
        probe
        [ "$(count '(floor, ' "$LOG")" = 3 ] || fail "evicted between floor and target: $(grep floor "$LOG")"
        [ "$(ls "$base"/*/*.ckpt | wc -l)" = 9 ] || fail "something was deleted between floor and target"

        # below the floor again: the two rank 2 left, the older (b, step 200) first
        fill "$f" $((7 * MIB + MIB / 2))
        probe
        evicted "$base/b/$(ck 1 0.2500)" "$LOG"
        evicted "$base/c/$(ck 2 0.4000)" "$LOG"
        [ "$(line_of "/b/$(ck 1 0.2500) (floor" "$LOG")" -lt "$(line_of "/c/$(ck 2 0.4000) (floor" "$LOG")" ] ||
                fail "the newer rank 2 went first: $(grep floor "$LOG")"
        assert_no_grep "short of the floor" "$LOG"

        # 100% full: nothing evictable is left; best, newest and pinned stay,
        # one LOG_CRIT however many checks, and ckptd goes on handling saves
        fill "$f" 0
        wait_for 20 grep -q "short of the floor" "$LOG" || fail "no LOG_CRIT with the disk full: $(tail "$LOG")"
        probe
        probe
        probe
        alive "$LOG"
        assert_names "$base/a" "$(ck 1 0.1000)" "$(ck 3 0.9000)"
        assert_names "$base/b" "$(ck 0 0.1500)" "$(ck 3 0.8000)"
        assert_names "$base/c" "$(ck 0 0.0500)" "$(ck 1 0.4500)" "$(ck 1 0.4500).keep" "$(ck 3 0.7000)"
        [ "$(count 'short of the floor' "$LOG")" = 1 ] || fail "LOG_CRIT not once: $(grep 'short of' "$LOG")"
        assert_grep "^ckptd: critical: free space on the filesystem of $base is .* short of the floor" "$LOG"
        assert_grep "protected: 3 best, 4 newest, 1 pinned" "$LOG" # the 4th: the probe
        # the metrics file follows within a second (ckptd(8)): wait for it
        wait_for 20 grep -q "^ckptd_floor_unmet 1$" "$T/metrics.prom" ||
                fail "metric not 1 with the disk full: $(cat "$T/metrics.prom")"
        [ "$(count '(floor, ' "$LOG")" = 5 ] || fail "evicted something protected: $(grep floor "$LOG")"

        # other data goes away: a notice (found by the check_interval timer)
        rm "$f"
        wait_for 20 grep -q "back above the floor" "$LOG" || fail "no recovery notice: $(tail "$LOG")"
        wait_for 20 grep -q "^ckptd_floor_unmet 0$" "$T/metrics.prom" || fail "metric still unmet: $(cat "$T/metrics.prom")"
        [ "$(count 'short of the floor' "$LOG")" = 1 ] || fail "LOG_CRIT repeated: $(grep 'short of' "$LOG")"
        stop_ckptd
}

test_order_hysteresis_protection_tmpfs() { floor_order_on tmpfs; }
test_order_hysteresis_protection_ext4() { floor_order_on ext4; }

# Many runs: the k-th best of every run goes before any run's (k-1)-th, with
# one-shot sweeps so that each step is exact. Eight runs of four 1 MiB
# checkpoints: rank 2 (step 100), best, rank 3 (step 300), newest. Every rank
# 2 is older than every rank 3, so "older first" alone would pick rank 2s.
test_many_runs_kth_best_of_every_run_first() {
        need_root
        local r
        local flags=(--preset lightning --monitor val_loss --keep-top-k 3 --keep-last 1)
        mount_tmpfs "$T/disk" 64m
        mkdir "$T/disk/other"
        for r in 0 1 2 3 4 5 6 7; do
                mkdir -p "$T/disk/runs/r$r"
                old_ckpt "$T/disk/runs/r$r" 0 0.2000 1024
                old_ckpt "$T/disk/runs/r$r" 1 0.1000 1024
                old_ckpt "$T/disk/runs/r$r" 2 0.3000 1024
                old_ckpt "$T/disk/runs/r$r" 3 0.9000 1024
        done
        # 8 MiB free, floor 10 MiB: two victims, both rank 3s
        fill "$T/disk/other/data" $((8 * MIB))
        "$CKPTD" -1 -w "$T/disk/runs" "${flags[@]}" --min-free 10M 2>err || fail "-1 failed: $(cat err)"
        [ "$(count '(floor, ' err)" = 2 ] || fail "expected 2 evictions: $(cat err)"
        [ "$(grep '(floor, ' err | grep -c "/$(ck 2 0.3000) ")" = 2 ] || fail "not rank 3s: $(cat err)"
        # 12 MiB free, floor 19 MiB: the six rank 3s left, then one rank 2
        fill "$T/disk/other/data" $((12 * MIB))
        "$CKPTD" -1 -w "$T/disk/runs" "${flags[@]}" --min-free 19M 2>err2 || fail "-1 failed: $(cat err2)"
        [ "$(count '(floor, ' err2)" = 7 ] || fail "expected 7 evictions: $(cat err2)"
        [ "$(grep '(floor, ' err2 | head -n6 | grep -c "/$(ck 2 0.3000) ")" = 6 ] || fail "rank 3s not first: $(cat err2)"
        [ "$(grep '(floor, ' err2 | tail -n1 | grep -c "/$(ck 0 0.2000) ")" = 1 ] || fail "rank 2 not last: $(cat err2)"
        [ "$(find "$T/disk/runs" -name "$(ck 2 0.3000)" | wc -l)" = 0 ] || fail "a rank 3 is left"
        [ "$(find "$T/disk/runs" -name "$(ck 0 0.2000)" | wc -l)" = 7 ] || fail "not exactly one rank 2 gone"
        [ "$(find "$T/disk/runs" -name "$(ck 1 0.1000)" | wc -l)" = 8 ] || fail "a best was evicted"
        [ "$(find "$T/disk/runs" -name "$(ck 3 0.9000)" | wc -l)" = 8 ] || fail "a newest was evicted"
        no_sanitizer_reports err err2
}

# Two watches on one file system, only B with a floor: B's floor evicts
# what B keeps, never what A keeps (A asked for none: min_free "0", as
# unset); when B's alone do not
# reach it, the floor is unmet, exit 3, and the warning counts A's.
test_watch_without_a_floor_is_not_evicted_for_another() {
        need_root
        local e
        mount_tmpfs "$T/disk" 64m
        mkdir -p "$T/disk/other" "$T/disk/A/run" "$T/disk/B/run"
        for e in 0 1 2 3; do
                old_ckpt "$T/disk/A/run" "$e" "0.$((1 + e))000" 1024
                old_ckpt "$T/disk/B/run" "$e" "0.$((1 + e))000" 1024
        done
        cat >c.conf <<EOC
watch = ( { path = "$T/disk/A"; preset = "lightning"; monitor = "val_loss"; keep_top_k = 1; keep_last = 4;
            min_free = "0"; },
          { path = "$T/disk/B"; preset = "lightning"; monitor = "val_loss"; keep_top_k = 1; keep_last = 4;
            min_free = "10M"; } );
EOC
        # 8 MiB free, floor 10 MiB: two of B's (its best and newest stay)
        fill "$T/disk/other/data" $((8 * MIB))
        "$CKPTD" -1 -c c.conf 2>err || fail "-1 failed: $(cat err)"
        [ "$(count '(floor, ' err)" = 2 ] || fail "expected 2 evictions: $(cat err)"
        assert_no_grep "$T/disk/A/" err
        [ "$(ls "$T/disk/A/run" | wc -l)" = 4 ] || fail "A lost some: $(ls "$T/disk/A/run")"
        # 9 MiB free, floor 12 MiB: B has nothing more to give
        fill "$T/disk/other/data" $((9 * MIB))
        sed -i 's/10M/12M/' c.conf
        local rc=0
        "$CKPTD" -1 -c c.conf 2>err2 || rc=$?
        [ "$rc" = 3 ] || fail "exit $rc, not 3: $(cat err2)"
        [ "$(ls "$T/disk/A/run" | wc -l)" = 4 ] || fail "A lost some: $(ls "$T/disk/A/run")"
        assert_grep ", 4 in watches that set no floor (min_free, headroom)" err2
        no_sanitizer_reports err err2
}

# floor_pass_held MIB NAME: ckptd-hooked on c.conf (log in d.log, pid in
# CKPTD_PID), then NAME of MIB MiB written on $T/fs below the floor; returns
# with the pass held at its first removal. Each byte written to fd 3 lets
# one removal go on.
floor_pass_held() {
        mkfifo hook
        exec 3<>hook # read-write: never blocks, and keeps the FIFO open between removals
        CKPTD_TEST_HOOK="before:$T/hook" "$CKPTD_HOOKED" --log-target stderr -c c.conf 2>d.log 3>&- &
        CKPTD_PID=$!
        echo "$CKPTD_PID" >>"$T/pids"
        wait_for 20 grep -q '^ckptd: watching ' d.log || fail "ckptd did not start: $(cat d.log)"
        head -c $(($1 << 20)) /dev/zero >"$T/fs/$2"
        wait_for 20 eval "ls -l /proc/$CKPTD_PID/fd 2>/dev/null | grep -q hook" ||
                fail "the pass did not reach its first removal: $(cat d.log)"
}

# A floor pass reads no event until it ends. What changed in a run during
# the pass is asked of the disk just before each eviction, and the run is
# read again whole: the pass is held at its first victim (run B) by the
# test seam, and meanwhile run A's next victim is pinned with a .keep
# (keep), or becomes A's best as A's best is removed (rm) or given to
# another owner (chown), or becomes A's last written as a trainer saves
# again under its name, into the same inode (rewrite). Two of B's victims
# are held by flock, so the pass goes on into A.
floor_changed_during_pass() { # keep|rm|chown|rewrite
        mount_tmpfs "$T/fs" 32m
        local a=$T/fs/logs/version_0/checkpoints b=$T/fs/logs/version_1/checkpoints e
        mkdir -p "$a" "$b"
        old_ckpt "$a" 0 0.1 2048
        old_ckpt "$a" 1 0.2 2048
        old_ckpt "$a" 5 0.9 2048
        for e in 0:0.1 1:0.3 2:0.5 3:0.7 4:0.8; do old_ckpt "$b" "${e%:*}" "${e#*:}" 2048; done
        cat >c.conf <<EOC
check_interval = 1;
watch = ( { path = "$T/fs/logs"; preset = "lightning"; monitor = "val_loss"; keep_top_k = -1; keep_last = 1;
            settle = 0; min_free = "12M"; } );
EOC
        "$PY" -c 'import fcntl, sys, time
fs = [open(p, "rb") for p in sys.argv[1:]]
for f in fs: fcntl.flock(f, fcntl.LOCK_SH)
print("locked", flush=True)
time.sleep(600)' "$b/$(ck 1 0.3)" "$b/$(ck 2 0.5)" >locker.out 3>&- &
        echo $! >>"$T/pids"
        wait_for 20 grep -q locked locker.out || fail "the flocks were not taken"
        floor_pass_held 7 filler1
        case $1 in
        keep) : >"$a/$(ck 1 0.2).keep" ;;
        rm) rm "$a/$(ck 0 0.1)" ;;
        chown) chown 4242 "$a/$(ck 0 0.1)" ;;
        rewrite) "$PY" -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.write(b"saved again")' "$a/$(ck 1 0.2)" ;;
        esac
        head -c $((2 << 20)) /dev/zero >"$T/fs/filler2"
        printf xxxxxxxxxx >&3 # the pass goes on
        wait_for 20 grep -q 'short of the floor' d.log || fail "the pass did not end short: $(cat d.log)"
        exec 3>&-
        assert_exists "$a/$(ck 1 0.2)"
        assert_exists "$a/$(ck 5 0.9)"
        evicted "$b/$(ck 3 0.7)" d.log || fail "B's worst was not evicted: $(cat d.log)"
}

test_floor_sees_a_keep_file_made_during_its_pass() { floor_changed_during_pass keep; }
test_floor_sees_a_best_removed_during_its_pass() { floor_changed_during_pass rm; }
test_floor_sees_a_best_given_away_during_its_pass() { floor_changed_during_pass chown; }
test_floor_sees_a_save_written_again_during_its_pass() { floor_changed_during_pass rewrite; }

# A pointer file caught half rewritten in place during a floor pass, its
# writer closed between two writes ("global_" of "global_step2"), names no
# checkpoint: the floor evicts nothing more of its run in that pass, and
# says so once (the one-shot then finds the floor unmet: exit 3).
test_floor_keeps_a_run_whose_pointer_is_half_written() {
        mount_tmpfs "$T/fs" 64m
        local r=$T/fs/run s pid rc=0
        mkdir "$r"
        for s in 1 2 3 4 5; do
                mkdir "$r/global_step$s"
                head -c $((10 * MIB)) /dev/zero >"$r/global_step$s/model.pt"
        done
        echo global_step5 >"$r/latest"
        touch -d "-1 hour" "$r"/*/* "$r"/*
        mkfifo hook
        exec 3<>hook
        CKPTD_TEST_HOOK="before:$T/hook" "$CKPTD_HOOKED" -1 -w "$T/fs" --preset deepspeed --keep-last 10 \
                --min-free 40M --settle 60 2>err 3>&- &
        pid=$!
        echo "$pid" >>"$T/pids"
        wait_for 20 eval "ls -l /proc/$pid/fd 2>/dev/null | grep -q hook" || fail "no eviction held: $(cat err)"
        printf global_ >"$r/latest"
        printf cccccc >&3
        wait_for 20 exited "$pid" || fail "ckptd -1 did not end: $(cat err)"
        wait "$pid" || rc=$?
        [ "$rc" = 3 ] || fail "exit $rc, not 3 (floor unmet): $(cat err)"
        exec 3>&-
        printf step2 >>"$r/latest"
        assert_names "$r" global_step2 global_step3 global_step4 global_step5 latest
        [ "$(count 'a pointer file written just now names no checkpoint' err)" = 1 ] || fail "not said once: $(cat err)"
}

# The watch directory moved away during a floor pass (an operator archives
# the tree): the eviction already past its checks (held at the seam) may
# go; nothing more is evicted in the tree moved away, which is no longer
# under the watch path, though the daemon holds its directories open.
test_floor_evicts_nothing_more_in_a_tree_moved_away() {
        mount_tmpfs "$T/fs" 32m
        local e r
        for r in a b; do
                mkdir -p "$T/fs/logs/$r"
                for e in 0:0.1 1:0.3 2:0.5 3:0.7 4:0.8; do old_ckpt "$T/fs/logs/$r" "${e%:*}" "${e#*:}" 2048; done
        done
        cat >c.conf <<EOC
check_interval = 1;
watch = ( { path = "$T/fs/logs"; preset = "lightning"; monitor = "val_loss"; keep_top_k = -1; keep_last = 1;
            settle = 0; min_free = "8M"; } );
EOC
        floor_pass_held 10 filler
        mkdir "$T/fs/archive"
        mv "$T/fs/logs" "$T/fs/archive/logs"
        printf xxxxxxxxxx >&3 # the pass goes on
        wait_for 20 grep -q "$T/fs/logs no longer leads to the directory watched" d.log ||
                fail "the move was not seen: $(cat d.log)"
        exec 3>&-
        [ "$(find "$T/fs/archive/logs" -name '*.ckpt' | wc -l)" = 9 ] ||
                fail "evicted in the tree moved away: $(find "$T/fs/archive/logs" -name '*.ckpt'); $(cat d.log)"
        [ "$(count '^ckptd: evicted ' d.log)" = 1 ] || fail "more than the one held was evicted: $(cat d.log)"
}

# The best of a run is the best of what the policy left: with keep_top_k 0
# the policy deletes the run's rank 1 (old, not the newest), and the floor
# must not then take the best one left, kept only for being young; nor say
# in a dry run that it would.
test_best_left_after_the_policy_is_protected() {
        need_root
        local r=$T/disk/runs rc f
        local flags=(--preset lightning --monitor val_loss --keep-top-k 0 --keep-last 1 --min-age 1h)
        mount_tmpfs "$T/disk" 32m
        mkdir -p "$r" "$T/disk/other"
        old_ckpt "$r" 0 0.1000 2048 # rank 1, old: the policy's
        for f in "1 0.2000" "2 0.3000" "3 0.9000"; do
                set -- $f
                mkfile "$r/$(ck "$1" "$2")" 2048
                touch -d "-2 minutes" "$r/$(ck "$1" "$2")" # young, settled
        done
        fill "$T/disk/other/data" $((5 * MIB))
        # the dry run says what the real pass does
        rc=0
        "$CKPTD" -1 -n -w "$r" "${flags[@]}" --min-free 30M 2>dry || rc=$?
        [ "$rc" = 3 ] || fail "-1 -n with an unmet floor exited $rc: $(cat dry)"
        assert_grep "would delete $r/$(ck 2 0.3000) (floor, " dry
        [ "$(count '(floor, ' dry)" = 1 ] || fail "the dry run would evict more than the rank 3: $(cat dry)"
        rc=0
        "$CKPTD" -1 -w "$r" "${flags[@]}" --min-free 30M 2>unmet || rc=$?
        [ "$rc" = 3 ] || fail "-1 with an unmet floor exited $rc: $(cat unmet)"
        assert_grep "deleted $r/$(ck 0 0.1000) (policy, " unmet
        assert_grep "evicted $r/$(ck 2 0.3000) (floor, " unmet
        [ "$(count '(floor, ' unmet)" = 1 ] || fail "evicted more than the rank 3: $(cat unmet)"
        assert_names "$r" "$(ck 1 0.2000)" "$(ck 3 0.9000)"
        no_sanitizer_reports dry unmet
}

# linked_daemon DIR: the daemon on the run DIR of the hard-link tests (the
# 3 best and the newest kept, floor 7M, checked every second) and a probe
# watch beside it on its filesystem; its log in $LOG.
linked_daemon() {
        PROBE_DIR=$T/disk/probe
        mkdir -p "$PROBE_DIR"
        touch -d "-1 hour" "$PROBE_DIR/p_0"
        cat >ckptd.conf <<EOC
check_interval = 1;
watch = (
  { path = "$1"; preset = "lightning"; monitor = "val_loss"; keep_top_k = 3; keep_last = 1;
    min_free = "7M"; },
  { path = "$PROBE_DIR"; pattern = "p_{step}"; keep_top_k = 0; keep_last = 1; settle = 0.2; }
);
EOC
        LOG=$T/log
        start_ckptd "$LOG" -c ckptd.conf
}

# A checkpoint with another link (a backup made by `cp -l`) frees nothing
# when evicted: the floor passes it by for the next one, as the dry run
# says, and never evicts it for nothing. Six 2 MiB checkpoints, the 3 best
# kept and the newest; 4 MiB free, floor 7 MiB: one eviction is enough,
# and the worst of the best 3 (rank 3) is the linked one.
test_floor_passes_a_hard_linked_checkpoint_by() {
        need_root
        local r=$T/disk/runs rc
        local flags=(--preset lightning --monitor val_loss --keep-top-k 3 --keep-last 1 --min-free 7M)
        mount_tmpfs "$T/disk" 32m
        mkdir -p "$r" "$T/disk/backup"
        old_ckpt "$r" 0 0.5000 2048
        old_ckpt "$r" 1 0.4000 2048 # rank 3
        old_ckpt "$r" 2 0.3000 2048 # rank 1
        old_ckpt "$r" 3 0.3500 2048 # rank 2
        old_ckpt "$r" 4 0.6000 2048 # newest
        ln "$r/$(ck 1 0.4000)" "$T/disk/backup/"
        fill "$T/disk/backup/data" $((4 * MIB))
        "$CKPTD" -1 -n -w "$r" "${flags[@]}" 2>dry || fail "-1 -n failed: $(cat dry)"
        assert_grep "would delete $r/$(ck 3 0.3500) (floor, " dry
        [ "$(count '(floor, ' dry)" = 1 ] || fail "the dry run would evict more: $(cat dry)"
        "$CKPTD" -1 -w "$r" "${flags[@]}" 2>out || fail "-1 failed: $(cat out)"
        assert_grep "evicted $r/$(ck 3 0.3500) (floor, " out
        [ "$(count '(floor, ' out)" = 1 ] || fail "evicted more than one: $(cat out)"
        assert_names "$r" "$(ck 1 0.4000)" "$(ck 2 0.3000)" "$(ck 4 0.6000)"
        [ "$(free_bytes "$r")" -ge $((7 * MIB)) ] || fail "the floor is not met: $(free_bytes "$r") free"

        # linked after the daemon read it: the removal's own check keeps it
        rm -rf "$r" "$T/disk/backup"
        mkdir -p "$r" "$T/disk/backup"
        old_ckpt "$r" 0 0.5000 2048
        old_ckpt "$r" 1 0.4000 2048
        old_ckpt "$r" 2 0.3000 2048
        old_ckpt "$r" 3 0.3500 2048
        old_ckpt "$r" 4 0.6000 2048
        linked_daemon "$r"
        ln "$r/$(ck 1 0.4000)" "$T/disk/backup/"
        fill "$T/disk/backup/data" $((4 * MIB))
        wait_for 20 grep -q "evicted $r/$(ck 3 0.3500) (floor, " "$LOG" || fail "nothing evicted: $(cat "$LOG")"
        probe
        [ "$(count '(floor, ' "$LOG")" = 1 ] || fail "evicted more than one: $(grep floor "$LOG")"
        assert_names "$r" "$(ck 1 0.4000)" "$(ck 2 0.3000)" "$(ck 4 0.6000)"
        # 6 MiB free of 7: what is left unmet, it says why, the one kept
        # at its removal among them
        assert_grep "short of the floor.*protected: .*, 1 hard-linked (evicting them frees nothing)" "$LOG"
        stop_ckptd
}

# The daemon's index does not hold a link count for the floor: removing
# the other link raises no event in the run, and the checkpoint must not
# stay passed by. Linked at start, the backup removed, then the disk
# fills: the floor evicts the worst kept one, the once-linked rank 3.
test_floor_trusts_no_old_link_count() {
        need_root
        local r=$T/disk/runs
        mount_tmpfs "$T/disk" 32m
        mkdir -p "$r" "$T/disk/backup"
        old_ckpt "$r" 1 0.4000 2048 # rank 2
        old_ckpt "$r" 2 0.3000 2048 # rank 1
        old_ckpt "$r" 3 0.5000 2048 # rank 3
        old_ckpt "$r" 4 0.6000 2048 # newest
        ln "$r/$(ck 3 0.5000)" "$T/disk/backup/"
        linked_daemon "$r"
        rm "$T/disk/backup/$(ck 3 0.5000)"
        fill "$T/disk/backup/data" $((5 * MIB + MIB / 2)) # one eviction meets the floor
        wait_for 20 grep -q "(floor, " "$LOG" || fail "nothing evicted: $(cat "$LOG")"
        probe
        evicted "$r/$(ck 3 0.5000)" "$LOG"
        [ "$(count '(floor, ' "$LOG")" = 1 ] || fail "evicted more than one: $(grep floor "$LOG")"
        stop_ckptd
}

# -1 with a save written in place: the floor decides its runs as the pass
# before did, with the save taken out for what it would displace. Four
# DeepSpeed saves of 2 MiB (keep_last 3) and a fifth being written, a shard
# open and 10 s old: the oldest left, global_step2, is the floor's victim,
# not global_step3 (kept only as the floor saw the run deciding anew).
test_oneshot_floor_decides_as_the_pass_before() {
        need_root
        local r=$T/disk/ds s
        mount_tmpfs "$T/disk" 32m
        mkdir -p "$r" "$T/disk/other"
        for s in 1 2 3 4; do
                mkdir "$r/global_step$s"
                mkfile "$r/global_step$s/shard.pt" 2048
                touch -d "-$((10 - s)) hours" "$r/global_step$s/shard.pt" "$r/global_step$s"
        done
        mkdir "$r/global_step5"
        "$PY" -c 'import os, sys, time
f = open(sys.argv[1], "wb"); f.write(os.urandom(1 << 20)); f.flush()
t = time.time() - 10; os.utime(sys.argv[1], (t, t)); open(sys.argv[2], "w").close()
time.sleep(600)' "$r/global_step5/shard.pt" "$T/ready" &
        echo $! >>"$T/pids"
        wait_for 10 test -e "$T/ready" || fail "the writer did not start"
        touch -d "-10 seconds" "$r/global_step5"
        fill "$T/disk/other/data" $((8 * MIB))
        "$CKPTD" -1 -w "$r" --preset deepspeed --keep-last 3 --min-free 11M 2>out || fail "-1 failed: $(cat out)"
        assert_grep "deleted $r/global_step1 (policy, " out
        assert_grep "evicted $r/global_step2 (floor, " out
        [ "$(count '(floor, ' out)" = 1 ] || fail "evicted more than one: $(cat out)"
        [ "$(count 'taken for a save still being written' out)" = 1 ] || fail "said more than once: $(cat out)"
        assert_names "$r" global_step3 global_step4 global_step5
}

# mk_steps DIR NAMING: four directory checkpoints of 2 MiB in DIR, an hour
# old: best step-1 (loss 0.1), rank 2 step-2 (0.5), rank 3 step-3 (0.6),
# newest step-4 (0.9). NAMING "file": named step-N, the loss in
# step-N/metrics.json (a run the events cannot follow, read again whole);
# "name": named step-N-loss=L (incremental).
step_name() { # STEP LOSS
        if [ "$NAMING" = name ]; then echo "step-$1-loss=$2"; else echo "step-$1"; fi
}

mk_steps() {
        local s d
        mkdir -p "$1"
        for s in "1 0.1" "2 0.5" "3 0.6" "4 0.9"; do
                set -- "$1" $s
                d=$1/$(step_name "$2" "$3")
                mkdir "$d"
                mkfile "$d/model.bin" 2048
                printf '{"loss": %s}\n' "$3" >"$d/metrics.json"
                touch -d "-1 hour" "$d/model.bin" "$d/metrics.json" "$d"
        done
}

# watch_of ROOT: its watch for a config, keep the 3 best + the newest, floor
# 8 MiB, target $TARGET_MIB (default 9) MiB.
watch_of() {
        local conf='pattern = "step-{step}"; metric_file = "metrics.json";'
        [ "$NAMING" = file ] || conf='pattern = "step-{step}-loss={loss}";'
        echo "{ path = \"$1\"; kind = \"dir\"; $conf monitor = \"loss\"; keep_top_k = 3; keep_last = 1;
    settle = 0.2; min_free = \"8M\"; target_free = \"${TARGET_MIB:-9}M\"; },"
}

# probed_start FREE WATCH...: on the tmpfs at $T/mnt, the daemon with these
# watches (and $EXTRA_CONF) and a probe, FREE bytes left free beside them;
# returns once the probe synced.
probed_start() {
        local m=$T/mnt free=$1
        shift
        mkdir -p "$m/probe" "$m/other"
        PROBE_DIR=$m/probe
        touch -d "-1 hour" "$PROBE_DIR/p_0"
        cat >ckptd.conf <<EOC
${EXTRA_CONF:-}
watch = ( $*
  { path = "$m/probe"; pattern = "p_{step}"; keep_top_k = 0; keep_last = 1; settle = 0.2; } );
EOC
        fill "$m/other/data" "$free"
        LOG=$T/ckptd.log
        start_ckptd "$LOG" -c ckptd.conf
        probe
}

# floor_crossed FREE: other data leaves FREE bytes on $T/mnt; returns once
# a floor pass evicted something.
floor_crossed() {
        fill "$T/mnt/other/data" "$1"
        probe
        wait_for 20 grep -q '(floor, ' "$LOG" || fail "nothing evicted below the floor: $(tail "$LOG")"
}

# metric_run_start: mk_steps in $T/mnt/runs/run on a 32 MiB tmpfs, 12 MiB
# free, the daemon started and synced.
metric_run_start() {
        need_root
        mount_tmpfs "$T/mnt" 32m
        mk_steps "$T/mnt/runs/run"
        probed_start $((12 * MIB)) "$(watch_of "$T/mnt/runs")"
        assert_names "$T/mnt/runs/run" "$(step_name 1 0.1)" "$(step_name 2 0.5)" "$(step_name 3 0.6)" \
                "$(step_name 4 0.9)"
}

# The floor ranks a run by what its files say now, not at its last
# decision. A metrics.json rewritten inside a complete directory checkpoint
# raises no event of the run; when the disk then falls below the floor, the
# eviction must take the run's rank 3 by the new metrics (step-1), never
# its new best (step-3, rank 3 when last decided).
test_metric_rewritten_since_the_last_decision_ranks_the_eviction() {
        local r=$T/mnt/runs/run s
        NAMING="file"
        metric_run_start
        # the metrics corrected in place: step-3 is the best, step-1 rank 3
        for s in "1 0.8" "3 0.05"; do
                set -- $s
                printf '{"loss": %s}\n' "$2" >"$r/step-$1/metrics.json.new"
                touch -d "-1 hour" "$r/step-$1/metrics.json.new"
                mv "$r/step-$1/metrics.json.new" "$r/step-$1/metrics.json"
        done
        # 7.5 MiB free, floor 8 MiB, target 9 MiB: one eviction
        floor_crossed $((7 * MIB + MIB / 2))
        evicted "$r/step-1" "$LOG"
        [ "$(count '(floor, ' "$LOG")" = 1 ] || fail "evicted more than one: $(grep floor "$LOG")"
        assert_names "$r" step-2 step-3 step-4
        stop_ckptd
}

# A victim kept at its removal (a flock inside it, as an evaluation job may
# hold) gives way to the next in the floor's order, in the same pass: the
# floor gets back above itself, and asks about the kept one no more than
# once per pass. Both for a run the events keep current and for one read
# again before the floor evicts from it.
floor_victim_kept_on() { # name|file
        local r=$T/mnt/runs/run lock
        NAMING=$1
        # the cap counts deletions, not victims kept
        EXTRA_CONF='max_delete_per_sweep = 1;'
        metric_run_start
        lock=$r/$(step_name 3 0.6)/model.bin
        flock -o -s "$lock" sleep 600 &
        echo $! >>"$T/pids"
        wait_for 10 sh -c "! flock -n -x '$lock' true"
        # 7.5 MiB free, floor 8 MiB, target 9 MiB: one eviction
        floor_crossed $((7 * MIB + MIB / 2))
        assert_grep "keeping $r/$(step_name 3 0.6) (flock)" "$LOG"
        evicted "$r/$(step_name 2 0.5)" "$LOG"
        probe
        probe
        [ "$(count '(floor, ' "$LOG")" = 1 ] || fail "evicted more than one: $(grep floor "$LOG")"
        [ "$(count '(flock)' "$LOG")" = 1 ] || fail "the kept victim asked about again: $(grep flock "$LOG")"
        assert_no_grep "short of the floor" "$LOG"
        assert_names "$r" "$(step_name 1 0.1)" "$(step_name 3 0.6)" "$(step_name 4 0.9)"
        stop_ckptd
}

test_floor_victim_kept_gives_way_incremental() { floor_victim_kept_on name; }
test_floor_victim_kept_gives_way_reread() { floor_victim_kept_on file; }

# The deletion cap stops a floor pass; the next pass goes on from the
# victim the cap stopped at. Cap 1; 5.5 MiB free, floor 8 MiB, target
# 11 MiB: step-3 in the first pass (7.5 MiB free, still below the floor),
# step-2 in the next, and the floor is met.
test_floor_cap_leaves_the_next_victim_for_the_next_pass() {
        local r=$T/mnt/runs/run
        NAMING=name
        EXTRA_CONF='max_delete_per_sweep = 1;'
        TARGET_MIB=11
        metric_run_start
        floor_crossed $((5 * MIB + MIB / 2))
        evicted "$r/step-3-loss=0.6" "$LOG"
        assert_grep "deletion cap (max_delete_per_sweep) reached" "$LOG"
        # still below the floor: short of it, by the cap, not by protection
        wait_for 20 grep -q "short of the floor.*the deletion cap (max_delete_per_sweep) stopped the pass" "$LOG" ||
                fail "no unmet floor naming the cap: $(grep -E 'floor|cap' "$LOG")"
        probe
        wait_for 20 test ! -e "$r/step-2-loss=0.5" || fail "step-2 left after the next pass: $(grep floor "$LOG")"
        evicted "$r/step-2-loss=0.5" "$LOG"
        assert_names "$r" step-1-loss=0.1 step-4-loss=0.9
        [ "$(free_bytes "$T/mnt")" -ge $((8 * MIB)) ] || fail "free $(free_bytes "$T/mnt") below the floor"
        stop_ckptd
}

# A name of a run that cannot be read again (ENOMEM) leaves the run's index
# behind the disk: the run is read whole before the floor ranks it. Its
# owner removes the best, step-1; reading that name fails; then the disk
# falls below the floor. The best left is step-2: the floor evicts step-3
# alone, never step-2 for a best that is gone.
test_floor_reads_a_run_whose_update_failed() {
        need_root
        local r=$T/mnt/runs/run n
        NAMING=name
        mount_tmpfs "$T/mnt" 32m
        mk_steps "$r"
        # how many reads of step-1 start-up makes: the next one fails
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO \
                FAULT_MATCH=step-1-loss FAULT_COUNT=$T/count probed_start $((12 * MIB)) "$(watch_of "$T/mnt/runs")"
        stop_ckptd
        n=$(awk '$1 == "statx" { print $2 }' "$T/count")
        [ -n "$n" ] || fail "no statx of step-1 counted: $(cat "$T/count")"
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO \
                FAULT_CALL=statx FAULT_NTH=$((n + 1)) FAULT_ERRNO=ENOMEM FAULT_MATCH=step-1-loss \
                FAULT_LOG=$T/faults probed_start $((12 * MIB)) "$(watch_of "$T/mnt/runs")"
        rm -r "${r:?}/$(step_name 1 0.1)"
        wait_for 20 grep -q "cannot scan .*run: Cannot allocate memory" "$LOG" ||
                fail "the read of the removed name did not fail: $(cat "$T/faults" 2>/dev/null; tail "$LOG")"
        floor_crossed $((5 * MIB + MIB / 2))
        evicted "$r/$(step_name 3 0.6)" "$LOG"
        wait_for 20 grep -q "short of the floor" "$LOG" || fail "no unmet floor: $(grep floor "$LOG")"
        assert_names "$r" "$(step_name 2 0.5)" "$(step_name 4 0.9)"
        stop_ckptd
}

# Events lost (IN_Q_OVERFLOW) and the rescan after them failing (EIO): no
# run's index is trusted until it is read again. The best, step-1, is
# removed among the lost events; the floor must then protect step-2, the
# best left, and evict step-3.
test_floor_trusts_no_index_after_lost_events_and_a_failed_rescan() {
        need_root
        local r=$T/mnt/runs/run n i
        NAMING=name
        EXTRA_CONF='check_interval = 3600;'
        mount_tmpfs "$T/mnt" 64m
        mk_steps "$r"
        # how many directories start-up lists: the next listing fails
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO \
                FAULT_COUNT=$T/count probed_start $((12 * MIB)) "$(watch_of "$T/mnt/runs")"
        stop_ckptd
        n=$(awk '$1 == "fdopendir" { print $2 }' "$T/count")
        [ -n "$n" ] || fail "no listing counted: $(cat "$T/count")"
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO \
                FAULT_CALL=fdopendir FAULT_NTH=$((n + 1)) FAULT_ERRNO=EIO probed_start $((12 * MIB)) \
                "$(watch_of "$T/mnt/runs")"
        kill -STOP "$CKPTD_PID"
        # more events than the kernel queues (16384 by default)
        for i in $(seq 1 9000); do : >"$r/junk_$i"; done
        rm -r "${r:?}/$(step_name 1 0.1)"
        kill -CONT "$CKPTD_PID"
        wait_for 20 grep -q "cannot scan $T/mnt/runs" "$LOG" || fail "the rescan did not fail: $(tail "$LOG")"
        floor_crossed $((5 * MIB + MIB / 2))
        probe
        evicted "$r/$(step_name 3 0.6)" "$LOG"
        [ -e "$r/$(step_name 2 0.5)" ] || fail "step-2, the best left, was evicted: $(grep floor "$LOG")"
        [ -e "$r/$(step_name 4 0.9)" ] || fail "step-4, the newest, was evicted: $(grep floor "$LOG")"
        stop_ckptd
}

# A polled watch (past the inotify watch limit; a network filesystem) has
# no event for what changed since its last poll: the floor reads its run
# whole before it evicts from it. Every watch of the run's directories
# fails (ENOSPC: the limit), step-3, the floor's first victim, is pinned by
# a .keep made after start-up, and the floor must evict step-2 instead.
test_floor_reads_a_polled_run_before_it_evicts() {
        need_root
        local r=$T/mnt/runs/run
        NAMING=name
        EXTRA_CONF='check_interval = 3600;'
        mount_tmpfs "$T/mnt" 32m
        mk_steps "$r"
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO \
                FAULT_CALL=inotify_add_watch FAULT_NTH=1 FAULT_REPEAT=1 FAULT_ERRNO=ENOSPC FAULT_MATCH=runs/run \
                probed_start $((12 * MIB)) "$(watch_of "$T/mnt/runs")"
        assert_grep "$T/mnt/runs: inotify watch limit reached" "$LOG"
        : >"$r/$(step_name 3 0.6).keep"
        floor_crossed $((7 * MIB + MIB / 2))
        probe
        evicted "$r/$(step_name 2 0.5)" "$LOG"
        [ -e "$r/$(step_name 3 0.6)" ] || fail "step-3, pinned by its .keep, was evicted: $(grep floor "$LOG")"
        assert_names "$r" "$(step_name 1 0.1)" "$(step_name 3 0.6)" "$(step_name 3 0.6).keep" "$(step_name 4 0.9)"
        stop_ckptd
}

# Below the floor, the floor evicts up to its target also when it reads a
# run again on the way: two runs, one incremental and one read again before
# the floor evicts from it; 7.5 MiB free, floor 8 MiB, target 12 MiB: three
# evictions, both rank 3s and then a rank 2.
test_floor_reads_a_run_again_and_goes_on_to_the_target() {
        need_root
        local m=$T/mnt
        mount_tmpfs "$m" 40m
        NAMING=name mk_steps "$m/a/run"
        NAMING="file"
        mk_steps "$m/b/run"
        probed_start $((20 * MIB)) "$(NAMING=name TARGET_MIB=12 watch_of "$m/a")" "$(TARGET_MIB=12 watch_of "$m/b")"
        floor_crossed $((7 * MIB + MIB / 2))
        probe
        evicted "$m/a/run/step-3-loss=0.6" "$LOG"
        evicted "$m/b/run/step-3" "$LOG"
        [ "$(count '(floor, ' "$LOG")" = 3 ] || fail "not three evictions: $(grep floor "$LOG")"
        [ "$(free_bytes "$m")" -ge $((12 * MIB)) ] || fail "free $(free_bytes "$m") below the target"
        stop_ckptd
}

# Removals that keep failing in one watch do not stop the floor in another:
# b's checkpoints cannot be unlinked (EPERM) and use up b's bound of failed
# removals (max_delete_per_sweep, 2) in the policy's pass; the floor, never
# met at 100%, still evicts two of a's, which the policy keeps all of.
test_once_floor_goes_on_past_a_watch_whose_removals_fail() {
        local s rc=0
        mkdir a b
        for s in 1 2 3 4 5 6; do mkfile "a/step_$s.pt" 64; done
        for s in 1 2 3; do : >"b/stuck_$s.pt"; done
        touch -d "-1 hour" a/* b/*
        cat >c.conf <<EOC
max_delete_per_sweep = 2;
watch = ( { path = "$T/a"; pattern = "step_{step}.pt"; keep_last = 6; min_free = "100%"; },
          { path = "$T/b"; pattern = "stuck_{step}.pt"; keep_last = 1; } );
EOC
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO \
                FAULT_CALL=unlinkat FAULT_NTH=1 FAULT_REPEAT=1 FAULT_ERRNO=EPERM FAULT_MATCH=stuck_ \
                "$CKPTD" -1 -c c.conf 2>d.log || rc=$?
        [ "$rc" = 1 ] || fail "exit $rc, not 1 (removals failed): $(cat d.log)"
        assert_grep "short of the floor" d.log
        [ "$(count "removals in $T/b keep failing" d.log)" = 1 ] || fail "b's bound: $(cat d.log)"
        [ "$(count '(floor, ' d.log)" = 2 ] || fail "the floor did not go on in a: $(cat d.log)"
        [ "$(ls a | wc -l) $(ls b | wc -l)" = "4 3" ] || fail "left: $(ls a b)"
}

# A floor pass whose victims cannot be removed stops trying after the bound
# (max_delete_per_sweep, 2) and says so where it says it is short.
test_once_floor_says_its_removals_kept_failing() {
        local s
        mkdir b
        for s in 1 2 3 4 5 6 7 8; do : >"b/stuck_$s.pt"; done
        touch -d "-1 hour" b/*
        cat >c.conf <<EOC
max_delete_per_sweep = 2;
watch = ( { path = "$T/b"; pattern = "stuck_{step}.pt"; keep_last = 8; min_free = "100%"; } );
EOC
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO \
                FAULT_CALL=unlinkat FAULT_NTH=1 FAULT_REPEAT=1 FAULT_ERRNO=EPERM FAULT_MATCH=stuck_ \
                "$CKPTD" -1 -c c.conf 2>d.log || true
        [ "$(count '^ckptd: error: cannot delete ' d.log)" = 2 ] || fail "not two tried: $(cat d.log)"
        assert_grep "short of the floor.*; removals kept failing (the errors above)" d.log
        [ "$(ls b | wc -l)" = 8 ] || fail "left: $(ls b)"
}

# A trainer restarted into an old run's directory writes epoch 0 beside the
# old epochs 1 to 3. The policy keeps epoch 0 as the last written; a floor
# never met evicts what it may, but neither the old run's newest (epoch 3)
# and best (epoch 1) nor epoch 0, what the restarted trainer resumes from.
test_once_floor_keeps_the_last_written_after_a_restart() {
        local rc=0
        mkdir runs
        old_ckpt runs 1 0.1 64
        old_ckpt runs 2 0.5 64
        old_ckpt runs 3 0.4 64
        mkfile "runs/$(ck 0 0.9)" 64
        touch -d "-10 minutes" "runs/$(ck 0 0.9)"
        cat >c.conf <<EOC
watch = ( { path = "$T/runs"; preset = "lightning"; monitor = "val_loss"; keep_top_k = 2; keep_last = 1;
            min_free = "100%"; } );
EOC
        "$CKPTD" -1 -c c.conf 2>d.log || rc=$?
        [ "$rc" = 3 ] || fail "exit $rc, not 3 (the floor unmet): $(cat d.log)"
        assert_grep "short of the floor.*protected: 1 best, 2 newest" d.log
        assert_names runs "$(ck 0 0.9)" "$(ck 1 0.1)" "$(ck 3 0.4)"
}

# The last written can be a save still being written in place (its mtime
# newer than the finished one before it): asked before it is protected, it
# counts as being written, and the finished save it would displace, what
# the restarted trainer resumes from, is protected instead.
test_once_floor_asks_whether_the_last_written_is_in_use() {
        local rc=0 s
        mkdir runs
        for s in 5001 6001 7001; do mkfile "runs/ck_$s.pt" 64; done
        touch -d "-1 hour" runs/ck_*.pt
        mkfile runs/ck_0.pt 64
        touch -d "-10 minutes" runs/ck_0.pt
        mkfile runs/ck_1.pt 64
        touch -d "-5 minutes" runs/ck_1.pt
        cat >c.conf <<EOC
watch = ( { path = "$T/runs"; pattern = "ck_{step}.pt"; keep_last = 1; keep_every = 1000; min_free = "100%"; } );
EOC
        # ck_1 held open for writing, as by a trainer writing it in place
        exec 7>>runs/ck_1.pt
        "$CKPTD" -1 -c c.conf 2>d.log || rc=$?
        exec 7>&-
        [ "$rc" = 3 ] || fail "exit $rc, not 3 (the floor unmet): $(cat d.log)"
        assert_grep "ck_1.pt: in use: taken for a save still being written" d.log
        assert_names runs ck_0.pt ck_1.pt ck_7001.pt
}

# So is the best: a save written in place whose name carries the best
# metric, its mtime that of its start, looks like the run's complete best;
# taken for a save being written, it leaves the best's place to the best
# complete checkpoint, which the floor must then keep.
test_once_floor_asks_whether_the_best_is_in_use() {
        local rc=0
        mkdir runs
        mkfile "runs/loss=0.5-id=2.ckpt" 64
        touch -d "-60 seconds" "runs/loss=0.5-id=2.ckpt"
        mkfile "runs/loss=1.0-id=4.ckpt" 64
        touch -d "-30 seconds" "runs/loss=1.0-id=4.ckpt"
        mkfile "runs/loss=0.1-id=25.ckpt" 32
        cat >c.conf <<EOC
watch = ( { path = "$T/runs"; preset = "lightning"; monitor = "loss"; keep_top_k = 3; keep_last = 0;
            min_free = "100%"; } );
EOC
        exec 7>>"runs/loss=0.1-id=25.ckpt"
        touch -d "-2 hours" "runs/loss=0.1-id=25.ckpt"
        "$CKPTD" -1 -c c.conf 2>d.log || rc=$?
        exec 7>&-
        [ "$rc" = 3 ] || fail "exit $rc, not 3 (the floor unmet): $(cat d.log)"
        assert_grep "loss=0.1-id=25.ckpt: in use: taken for a save still being written" d.log
        assert_names runs "loss=0.1-id=25.ckpt" "loss=0.5-id=2.ckpt" "loss=1.0-id=4.ckpt"
}

# The daemon's floor passes every second while a save is written, and says
# once that it took the save for one being written (later passes at debug,
# told apart by the JSON lines' PRIORITY).
test_floor_says_once_that_a_save_is_taken() {
        need_root
        local w=$T/mnt/w taken='"MESSAGE":"[^"]*loss=0.1-id=25.ckpt: in use: taken'
        mount_tmpfs "$T/mnt" 4m
        mkdir "$w"
        mkfile "$w/loss=0.5-id=2.ckpt" 64
        touch -d "-60 seconds" "$w/loss=0.5-id=2.ckpt"
        mkfile "$w/loss=1.0-id=4.ckpt" 64
        touch -d "-30 seconds" "$w/loss=1.0-id=4.ckpt"
        mkfile "$w/loss=0.1-id=25.ckpt" 32
        exec 7>>"$w/loss=0.1-id=25.ckpt"
        touch -d "-2 hours" "$w/loss=0.1-id=25.ckpt"
        cat >c.conf <<EOC
log_level = "debug"; check_interval = 1;
watch = ( { path = "$w"; preset = "lightning"; monitor = "loss"; keep_top_k = 3; keep_last = 0;
            settle = 0.2; min_free = "$(($(free_bytes "$T/mnt") + 8192))"; } );
EOC
        LOG=$T/ckptd.log
        "$CKPTD" --log-target stderr --log-format json -c c.conf 2>"$LOG" &
        CKPTD_PID=$!
        echo "$CKPTD_PID" >>"$T/pids"
        wait_for 20 at_least 3 "$taken"'.*"PRIORITY":"7"' "$LOG" || fail "not three floor passes: $(cat "$LOG")"
        exec 7>&-
        [ "$(count "$taken"'.*"PRIORITY":"6"' "$LOG")" = 1 ] || fail "not said once: $(grep 'in use' "$LOG")"
        [ -e "$w/loss=0.5-id=2.ckpt" ] || fail "the best complete checkpoint was evicted: $(grep floor "$LOG")"
        stop_ckptd
}

# --- 4. one-shot: exit 3 when unmet, 0 when met; -n deletes nothing ---
test_once_exit_status_and_dry_run() {
        need_root
        local r=$T/disk/runs rc names
        local flags=(--preset lightning --monitor val_loss --keep-top-k 3 --keep-last 1)
        mount_tmpfs "$T/disk" 32m
        mkdir -p "$r" "$T/disk/other"
        # e0 goes by policy; e1 best, e2 rank 2, e3 rank 3, e4 newest
        old_ckpt "$r" 0 0.5000 2048
        old_ckpt "$r" 1 0.2000 2048
        old_ckpt "$r" 2 0.3000 2048
        old_ckpt "$r" 3 0.4000 2048
        old_ckpt "$r" 4 0.9000 2048
        fill "$T/disk/other/data" $((5 * MIB))
        names=$(ls_names "$r")

        # dry run below the floor: counts e0 as freed, would evict e3 only
        rc=0
        "$CKPTD" -1 -n -w "$r" "${flags[@]}" --min-free 8M 2>dry || rc=$?
        [ "$rc" = 0 ] || fail "-1 -n exited $rc: $(cat dry)"
        [ "$(ls_names "$r")" = "$names" ] || fail "the dry run deleted something"
        assert_grep "would delete $r/$(ck 0 0.5000) (policy, " dry
        assert_grep "would delete $r/$(ck 3 0.4000) (floor, " dry
        [ "$(count '(floor, ' dry)" = 1 ] || fail "dry run would evict more than needed: $(cat dry)"

        # dry run with an unmet floor: exit 3, still nothing deleted
        rc=0
        "$CKPTD" -1 -n -w "$r" "${flags[@]}" --min-free 30M 2>dry2 || rc=$?
        [ "$rc" = 3 ] || fail "-1 -n with an unmet floor exited $rc: $(cat dry2)"
        [ "$(ls_names "$r")" = "$names" ] || fail "the dry run deleted something"
        assert_grep "would delete $r/$(ck 2 0.3000) (floor, " dry2

        # met after evicting: exit 0. The floor is headroom 4 x the largest
        # (2 MiB) = 8 MiB, which -1 must learn by scanning.
        rc=0
        "$CKPTD" -1 -w "$r" "${flags[@]}" --headroom 4 2>met || rc=$?
        [ "$rc" = 0 ] || fail "-1 with a floor it could meet exited $rc: $(cat met)"
        assert_names "$r" "$(ck 1 0.2000)" "$(ck 2 0.3000)" "$(ck 4 0.9000)"
        assert_grep "evicted $r/$(ck 3 0.4000) (floor, " met
        [ "$(free_bytes "$T/disk")" -ge $((8 * MIB)) ] || fail "floor not met"

        # unmet: exit 3, the best and the newest stay, LOG_CRIT
        rc=0
        "$CKPTD" -1 -w "$r" "${flags[@]}" --min-free 30M 2>unmet || rc=$?
        [ "$rc" = 3 ] || fail "-1 with an unmet floor exited $rc: $(cat unmet)"
        assert_names "$r" "$(ck 1 0.2000)" "$(ck 4 0.9000)"
        assert_grep "^ckptd: critical: .*short of the floor" unmet

        # met with nothing to do: exit 0, nothing deleted
        rc=0
        "$CKPTD" -1 -w "$r" "${flags[@]}" --min-free 1M 2>idle || rc=$?
        [ "$rc" = 0 ] || fail "-1 with a met floor exited $rc: $(cat idle)"
        assert_names "$r" "$(ck 1 0.2000)" "$(ck 4 0.9000)"
        assert_no_grep "deleted /" idle
        no_sanitizer_reports dry dry2 met unmet idle
}

# A HF save that died (no trainer_state.json, nothing written in it for
# hours) is kept, but its bytes are no room kept for a save: a floor that
# only they would meet is unmet, exit 3. Until then (a save still being
# written, quiet for a minute) they are room, as for any save in progress.
test_once_dead_save_is_no_room() {
        need_root
        local r=$T/disk/out rc s
        mount_tmpfs "$T/disk" 20m
        mkdir -p "$r" "$T/disk/other"
        # checkpoint-200, the newest, cannot be evicted; 300 has no marker
        for s in 200 300; do
                mkdir "$r/checkpoint-$s"
                mkfile "$r/checkpoint-$s/model.safetensors" 3000
                [ "$s" = 300 ] || echo '{"log_history": []}' >"$r/checkpoint-$s/trainer_state.json"
        done
        touch -d "-1 minute" "$r"/checkpoint-*/* "$r"/checkpoint-*
        fill "$T/disk/other/data" $((5 * MIB))
        rc=0
        "$CKPTD" -1 -w "$r" --preset huggingface --keep-last 1 --min-free 7M 2>live || rc=$?
        [ "$rc" = 0 ] || fail "-1 with a save under way exited $rc: $(cat live)"
        touch -d "-2 hours" "$r"/checkpoint-*/* "$r"/checkpoint-*
        rc=0
        "$CKPTD" -1 -w "$r" --preset huggingface --keep-last 1 --min-free 7M 2>dead || rc=$?
        [ "$rc" = 3 ] || fail "-1 with a dead save exited $rc: $(cat dead)"
        assert_grep "^ckptd: critical: .*short of the floor" dead
        assert_names "$r" checkpoint-200 checkpoint-300
        no_sanitizer_reports live dead
}

# notify_listener: $T/notify.sock, a NOTIFY_SOCKET whose messages go one a
# line to $T/notify.log.
notify_listener() {
        "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        f.write(s.recv(65536).decode(errors="replace").replace("\n", " | ") + "\n")
        f.flush()
' "$T/notify.sock" "$T/notify.log" &
        echo $! >>"$T/pids"
        wait_for 10 test -S "$T/notify.sock" || fail "no notify socket"
}

# The first STATUS= after start-up already tells the filesystem's free
# space and floor, read before READY=1: not "0B free, floor 0B" for a
# second (an alert on free space would fire at every start).
test_first_status_tells_the_floor() {
        need_root
        local r=$T/disk/r
        mount_tmpfs "$T/disk" 32m
        mkdir -p "$r"
        notify_listener
        LOG=$T/ckptd.log
        NOTIFY_SOCKET=$T/notify.sock start_ckptd "$LOG" -w "$r" --preset lightning --min-free 4M
        wait_for 20 grep -q "STATUS=" "$T/notify.log" || fail "no STATUS: $(cat "$T/notify.log")"
        grep -m1 "STATUS=" "$T/notify.log" | grep -q "$r [0-9.]*M free, floor 4M" ||
                fail "the first STATUS=: $(cat "$T/notify.log")"
        stop_ckptd
}

# --- 5. the metrics file and STATUS= follow the floor (check_interval only) ---
test_metrics_and_status_follow_the_floor() {
        need_root
        local r=$T/disk/runs
        mount_tmpfs "$T/disk" 16m
        mkdir -p "$r" "$T/disk/other"
        old_ckpt "$r" 0 0.1000 1024
        old_ckpt "$r" 1 0.5000 1024
        fill "$T/disk/other/data" $((10 * MIB))
        notify_listener
        cat >ckptd.conf <<EOC
check_interval = 1;
metrics_file = "$T/metrics.prom";
watch = ( { path = "$r"; preset = "lightning"; monitor = "val_loss"; min_free = "4M"; settle = 0.2; } );
EOC
        LOG=$T/ckptd.log
        NOTIFY_SOCKET=$T/notify.sock start_ckptd "$LOG" -c ckptd.conf
        wait_for 20 grep -q "^ckptd_floor_unmet 0$" "$T/metrics.prom" || fail "no metrics: $(cat "$T/metrics.prom")"
        wait_for 20 grep -q "STATUS=.*floor" "$T/notify.log" || fail "no STATUS: $(cat "$T/notify.log")"

        # only the best and the newest: nothing can be evicted
        fill "$T/disk/other/data" $((2 * MIB))
        wait_for 20 grep -q "^ckptd_floor_unmet 1$" "$T/metrics.prom" || fail "metric not 1: $(cat "$T/metrics.prom")"
        wait_for 20 sh -c "tail -n1 '$T/notify.log' | grep -q 'FLOOR UNMET'" || fail "STATUS: $(cat "$T/notify.log")"
        assert_grep "short of the floor" "$LOG"
        assert_names "$r" "$(ck 0 0.1000)" "$(ck 1 0.5000)"

        fill "$T/disk/other/data" $((10 * MIB))
        wait_for 20 grep -q "^ckptd_floor_unmet 0$" "$T/metrics.prom" || fail "metric not 0: $(cat "$T/metrics.prom")"
        wait_for 20 sh -c "tail -n1 '$T/notify.log' | grep -q 'STATUS=' && ! tail -n1 '$T/notify.log' | grep -q 'UNMET'" ||
                fail "STATUS still unmet: $(tail -n3 "$T/notify.log")"
        assert_grep "back above the floor" "$LOG"

        # unmet again, then a reload turns the floor off: nothing is unmet
        fill "$T/disk/other/data" $((2 * MIB))
        wait_for 20 grep -q "^ckptd_floor_unmet 1$" "$T/metrics.prom" || fail "metric not 1 again"
        cat >ckptd.conf <<EOC
check_interval = 1;
metrics_file = "$T/metrics.prom";
watch = ( { path = "$r"; preset = "lightning"; monitor = "val_loss"; settle = 0.2; } );
EOC
        kill -HUP "$CKPTD_PID"
        wait_for 20 grep -q "reloaded" "$LOG" || fail "no reload: $(cat "$LOG")"
        wait_for 20 grep -q "^ckptd_floor_unmet 0$" "$T/metrics.prom" ||
                fail "floor turned off, still unmet: $(cat "$T/metrics.prom")"
        alive "$LOG"
        stop_ckptd
}

# --- a filesystem whose free space cannot be read ---
#
# fstatvfs failing (EIO, ETIMEDOUT on NFS or Lustre) leaves the floor
# unknown: nothing is evicted for it, and it is never reported met. Six
# settled 5 MiB checkpoints all kept by the policy on a 40 MiB tmpfs: 10 MiB
# free, a floor of 18 MiB that two evictions meet once statvfs reads again.

statvfs_fails_disk() {
        need_root
        [ -n "${FAULT_SO:-}" ] && [ -f "$FAULT_SO" ] || skip "no fault shim (FAULT_SO, make build/fault.so)"
        mount_tmpfs "$T/disk" 40m
        mkdir "$T/disk/r"
        for e in 1 2 3 4 5 6; do old_ckpt "$T/disk/r" "$e" "0.$e" 5120; done
        cat >ckptd.conf <<EOC
check_interval = 1;
metrics_file = "$T/metrics.prom";
watch = ( { path = "$T/disk/r"; preset = "lightning"; monitor = "val_loss"; keep_top_k = -1; min_free = "18M";
            settle = 0.3; } );
EOC
}

all_six() { names_are "$T/disk/r" "$(ck 1 0.1)" "$(ck 2 0.2)" "$(ck 3 0.3)" "$(ck 4 0.4)" "$(ck 5 0.5)" "$(ck 6 0.6)"; }

# with_statvfs_failing CMD...: CMD with every fstatvfs of ckptd failing with
# EIO while $T/statvfs-fails exists; each failure logged to $T/faults.
with_statvfs_failing() {
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO \
                FAULT_CALL=fstatvfs FAULT_NTH=1 FAULT_REPEAT=1 FAULT_ERRNO=EIO FAULT_WHILE=$T/statvfs-fails \
                FAULT_LOG=$T/faults "$@"
}

status_says() { # PATTERN: `ckptd status` prints it
        "$CKPTD" status >st 2>&1 && grep -q -- "$1" st
}

test_floor_unknown_while_statvfs_fails_then_recovers() {
        statvfs_fails_disk
        export RUNTIME_DIRECTORY=$T/rt STATE_DIRECTORY=$T/state
        mkdir -p "$RUNTIME_DIRECTORY" "$STATE_DIRECTORY"
        notify_listener
        : >"$T/statvfs-fails"
        LOG=$T/ckptd.log
        NOTIFY_SOCKET=$T/notify.sock with_statvfs_failing start_ckptd "$LOG" -c ckptd.conf

        # said, in the log with its errno, and wherever the floor is shown
        wait_for 20 grep -q "cannot read the free space of the filesystem of $T/disk/r: Input/output error" "$LOG" ||
                fail "no error logged: $(cat "$LOG")"
        wait_for 20 status_says "free space unknown (Input/output error), FLOOR UNKNOWN" || fail "status: $(cat st)"
        assert_no_grep "floor met" st
        [ "$("$CKPTD" status --json | "$PY" -c 'import json, sys
f = json.load(sys.stdin)["daemons"][0]["filesystems"][0]
print(f["floor_unknown"], f["free_bytes"], f["error"])')" = "True None Input/output error" ] ||
                fail "status --json: $("$CKPTD" status --json)"
        wait_for 20 grep -q "^ckptd_floor_unknown 1$" "$T/metrics.prom" || fail "metrics: $(cat "$T/metrics.prom")"
        assert_no_grep "^ckptd_free_bytes{" "$T/metrics.prom"
        assert_grep "^ckptd_read_errors_total [1-9]" "$T/metrics.prom"
        wait_for 20 sh -c "tail -n1 '$T/notify.log' | grep -q 'FLOOR UNKNOWN'" || fail "STATUS: $(cat "$T/notify.log")"

        # checked again every second, logged once, and nothing evicted
        wait_for 20 at_least 8 "^fstatvfs " "$T/faults" || fail "not checked again: $(cat "$T/faults")"
        [ "$(count "cannot read the free space" "$LOG")" = 1 ] || fail "not logged once: $(cat "$LOG")"
        all_six || fail "evicted with the free space unknown: $(ls "$T/disk/r")"
        assert_no_grep "(floor, " "$LOG"
        assert_no_grep "back above the floor" "$LOG"

        # it reads again: said once, and the floor works by itself
        rm "$T/statvfs-fails"
        wait_for 20 grep -q "the free space of the filesystem of $T/disk/r can be read again" "$LOG" ||
                fail "recovery not said: $(cat "$LOG")"
        wait_for 20 eval '[ "$(ls "$T/disk/r" | wc -l)" = 4 ]' || fail "the floor did not evict: $(ls "$T/disk/r")"
        evicted "$T/disk/r/$(ck 5 0.5)" "$LOG"
        evicted "$T/disk/r/$(ck 4 0.4)" "$LOG"
        wait_for 20 status_says "floor met" || fail "status after recovery: $(cat st)"
        wait_for 20 grep -q "^ckptd_floor_unknown 0$" "$T/metrics.prom" || fail "metrics: $(cat "$T/metrics.prom")"
        assert_grep "^ckptd_free_bytes{" "$T/metrics.prom"
        wait_for 20 sh -c "tail -n1 '$T/notify.log' | grep -q 'STATUS=' && ! tail -n1 '$T/notify.log' | grep -q 'UNKNOWN'" ||
                fail "STATUS still unknown: $(tail -n3 "$T/notify.log")"
        alive "$LOG"
        stop_ckptd
}

test_once_and_list_with_statvfs_failing() {
        statvfs_fails_disk
        : >"$T/statvfs-fails"
        # -l: the floor is unknown, not ok
        with_statvfs_failing "$CKPTD" -l -c ckptd.conf >list 2>list.err || fail "-l failed: $(cat list.err)"
        assert_grep "size and free space unknown (Input/output error), floor unknown" list
        assert_no_grep ": ok$" list
        # -1: exit 1 with the reason, nothing evicted
        assert_exit 1 with_statvfs_failing "$CKPTD" --log-target stderr -1 -c ckptd.conf 2>once
        assert_grep "cannot read the free space of the filesystem of $T/disk/r: Input/output error" once
        assert_grep "the free-space floor could not be checked" once
        all_six || fail "-1 evicted with the free space unknown: $(ls "$T/disk/r")"
        # and once it reads, the same -1 meets the floor
        rm "$T/statvfs-fails"
        assert_exit 0 with_statvfs_failing "$CKPTD" --log-target stderr -1 -c ckptd.conf 2>once2
        [ "$(ls "$T/disk/r" | wc -l)" = 4 ] || fail "-1 did not evict: $(ls "$T/disk/r") $(cat once2)"
}

# A reload keeps what the floor knew of every filesystem, whatever the order
# of the watches: the second watch's headroom floor (2 x the largest
# checkpoint seen, an 8M one since deleted) stays 16M, not 2 x the 2M left.
test_reload_keeps_the_floor_of_every_filesystem() {
        need_root
        local a=$T/disk1/a b=$T/disk2/b
        mount_tmpfs "$T/disk1" 16m
        mount_tmpfs "$T/disk2" 32m
        mkdir -p "$a" "$b"
        old_ckpt "$a" 0 0.5000 64
        old_ckpt "$b" 0 0.9000 8192
        old_ckpt "$b" 1 0.5000 2048
        old_ckpt "$b" 2 0.6000 2048
        cat >ckptd.conf <<EOC
check_interval = 1;
metrics_file = "$T/metrics.prom";
watch = ( { path = "$a"; preset = "lightning"; monitor = "val_loss"; keep_top_k = 1; keep_last = 1; },
          { path = "$b"; preset = "lightning"; monitor = "val_loss"; keep_top_k = 1; keep_last = 1; headroom = 2.0; } );
EOC
        LOG=$T/ckptd.log
        start_ckptd "$LOG" -c ckptd.conf
        floor16() { grep -q "^ckptd_floor_bytes{path=\"$b\"} $((16 * MIB))$" "$T/metrics.prom"; }
        wait_for 20 floor16 || fail "floor: $(grep floor_bytes "$T/metrics.prom") $(cat "$LOG")"
        assert_names "$b" "$(ck 1 0.5000)" "$(ck 2 0.6000)"
        kill -HUP "$CKPTD_PID"
        wait_for 20 grep -q '^ckptd: reloaded ' "$LOG" || fail "no reload: $(cat "$LOG")"
        # two idle checks after it, each a floor pass and a metrics file
        rewritten() { [ "$(stat -c '%i %.9Y' "$1")" != "$2" ]; }
        for _ in 1 2; do
                s0=$(stat -c '%i %.9Y' "$T/metrics.prom")
                wait_for 20 rewritten "$T/metrics.prom" "$s0" || fail "no idle check"
        done
        floor16 || fail "the reload lowered the floor: $(grep floor_bytes "$T/metrics.prom")"
        stop_ckptd
}

run_tests
