#!/usr/bin/env bash
# What the running daemon tells: STATUS= and the metrics file kept current by
# the idle check, `ckptd status` from its state file, `ckptd reload` with the
# reload's outcome, read-only watches, and --log-format json.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

# The state file goes to a runtime directory of the test's own.
export RUNTIME_DIRECTORY

# lightning_run DIR: four old checkpoints; best 1 + last 1 keeps epochs 1 and 4.
lightning_run() {
        mkdir -p "$1"
        for e in 1 2 3 4; do mkfile "$1/epoch=$e-val_loss=0.$((5 - e % 4)).ckpt" 4; done
        touch -d "-1 hour" "$1"/*
}

# conf PATH KEEP_TOP_K [EXTRA]: a config watching PATH.
conf() {
        cat <<EOC
check_interval = 1;
metrics_file = "$T/metrics.prom";
${3:-}
watch = ( { path = "$1"; preset = "lightning"; monitor = "val_loss"; keep_top_k = $2; keep_last = 1;
            settle = 0.2; min_free = "1M"; } );
EOC
}

# metric NAME: its value in the metrics file (first sample).
metric() {
        awk -v n="$1" '$1 ~ "^"n"({|$)" { print $2; exit }' "$T/metrics.prom" 2>/dev/null
}

# state EXPR: a python expression over the JSON state `d` of the one daemon.
state() {
        "$CKPTD" status --json 2>/dev/null | $PY -c 'import json, sys; d = json.load(sys.stdin)["daemons"][0]; print(eval(sys.argv[1]))' "$1"
}

setup_fs() {
        need_root
        RUNTIME_DIRECTORY=$T/rt
        mkdir -p fs rt
        mount -t tmpfs -o size=64m tmpfs "$T/fs" || fail "cannot mount a tmpfs"
        mkdir -p fs/runs fs/other
}

# A file system without a floor is measured all the same: status shows its
# free space, from the start.
test_status_without_a_floor_shows_free_space() {
        setup_fs
        lightning_run fs/runs/a
        cat >c.conf <<EOC
watch = ( { path = "$T/fs/runs"; preset = "lightning"; monitor = "val_loss"; keep_top_k = 1; keep_last = 1; } );
EOC
        start_daemon d.log -c "$T/c.conf"
        wait_for 10 eval '"$CKPTD" status >st 2>&1 && grep -q "space: .* free of 64M, no floor" st' ||
                fail "status: $(cat st)"
        assert_no_grep "0B free of 0B" st
        stop_daemon d.log
}

# Nothing happens in the watched tree while another program fills the file
# system: the idle check (check_interval) brings STATUS= and the metrics
# file to the new free space.
test_idle_check_republishes_free_space() {
        setup_fs
        lightning_run fs/runs/a
        conf "$T/fs/runs" 1 >c.conf
        start_daemon d.log -c "$T/c.conf"
        wait_for 10 eval '[ -n "$(metric ckptd_free_bytes)" ]' || fail "no metrics: $(cat d.log)"
        before=$(metric ckptd_free_bytes)
        status_before=$(state 'd["status"]')
        echo "before: $before; $status_before"
        dd if=/dev/urandom of=fs/other/filler bs=1M count=20 status=none
        # df's figure now, and what ckptd shows within a few idle checks
        want=$(($(stat -f -c '%a * %S' fs)))
        wait_for 10 eval '[ "$(metric ckptd_free_bytes)" = "$want" ]' ||
                fail "metrics say $(metric ckptd_free_bytes) free, df $want (was $before)"
        wait_for 10 eval '[ "$(state "d[\"status\"]")" != "$status_before" ]' ||
                fail "STATUS= still says: $(state 'd["status"]')"
        state 'd["filesystems"][0]["free_bytes"]' >free
        [ "$(cat free)" = "$want" ] || fail "status --json says $(cat free) free, df $want"
        stop_daemon d.log
}

# stamp FILE: its inode and mtime; a rewrite (a new file renamed over it)
# changes them.
stamp() { stat -c '%i %.9Y' "$1" 2>/dev/null; }

# quiet_checks N: N idle checks (each rewrites the metrics file) pass while
# the state file stays as it is; false once it changes.
quiet_checks() {
        local s0 m n=0
        s0=$(stamp rt/state-"$DPID".json)
        m=$(stamp metrics.prom)
        while [ "$n" -lt "$1" ]; do
                wait_for 5 eval '[ "$(stamp metrics.prom)" != "$m" ]' || return 1
                m=$(stamp metrics.prom)
                [ "$(stamp rt/state-"$DPID".json)" = "$s0" ] || return 1
                n=$((n + 1))
        done
}

# An idle daemon checks free space every check_interval and rewrites the
# metrics file, but leaves its state file alone while what it says is the
# same; a change (a save; the file removed or written over) is written at
# once or at the next check.
test_idle_daemon_leaves_its_state_file_alone() {
        setup_fs
        lightning_run fs/runs/a
        conf "$T/fs/runs" 1 >c.conf
        start_daemon d.log -c "$T/c.conf"
        wait_names fs/runs/a "epoch=4-val_loss=0.5.ckpt" "epoch=3-val_loss=0.2.ckpt"
        # the first publishes after start may still bring news: wait until
        # three checks in a row leave the state file as it is
        wait_for 30 quiet_checks 3 || fail "the state file is rewritten at every idle check"
        before=$(stamp rt/state-"$DPID".json)
        updated=$(state 'd["updated_usec"]')
        mkfile fs/runs/a/epoch=5-val_loss=0.6.ckpt 4
        wait_names fs/runs/a "epoch=5-val_loss=0.6.ckpt" "epoch=3-val_loss=0.2.ckpt"
        wait_for 10 eval '"$CKPTD" status >st 2>&1 && grep -q "epoch=4-val_loss=0.5.ckpt" st' ||
                fail "the deletion is not in the state file: $(cat st)"
        [ "$(stamp rt/state-"$DPID".json)" != "$before" ] || fail "state file not rewritten"
        [ "$(state 'd["updated_usec"]')" -gt "$updated" ] || fail "updated_usec did not move"
        # a state file removed or written over under an idle daemon is put
        # right at its next check
        rm rt/state-"$DPID".json
        wait_for 10 test -e rt/state-"$DPID".json || fail "the state file did not come back"
        assert_exit 0 "$CKPTD" status
        echo '{}' >rt/state-"$DPID".json
        wait_for 10 "$CKPTD" status >/dev/null 2>&1 || fail "the state file stays written over: $(cat rt/state-"$DPID".json)"
        assert_exit 0 "$CKPTD" reload
        stop_daemon d.log
}

# `ckptd status` tells runs, decisions, free space and reloads without
# rescanning; `ckptd reload` exits 0 on a good config, 1 with FILE:LINE on a
# rejected one, which STATUS= names until a good reload.
test_status_and_reload() {
        setup_fs
        lightning_run fs/runs/a
        conf "$T/fs/runs" 1 >c.conf
        start_daemon d.log -c "$T/c.conf"
        wait_names fs/runs/a "epoch=4-val_loss=0.5.ckpt" "epoch=3-val_loss=0.2.ckpt"
        # the state file follows within a second (ckptd(8)): wait for the
        # decisions and the floor's first look, which may come a publish later
        wait_for 10 eval '"$CKPTD" status >st 2>&1 && grep -q "epoch=2-val_loss=0.3.ckpt" st && grep -q "free of 64M" st' ||
                fail "status: $(cat st)"
        cat st
        assert_grep "^ckptd\[$DPID\] $T/c.conf" st
        assert_grep "watch: *$T/fs/runs: present, 2 runs, 2 checkpoints" st
        assert_grep "delete  *$T/fs/runs/a/epoch=1-val_loss=0.4.ckpt (policy, 4K)" st
        assert_grep "space: *$T/fs/runs: .* free of 64M, floor 1M" st
        assert_grep "deleted: *2 checkpoints, 8K" st
        assert_grep "reload: *none since start" st
        "$CKPTD" status --json >st.json || fail "status --json failed"
        $PY -c 'import json, sys; d = json.load(open(sys.argv[1]))["daemons"][0]
assert d["pid"] == int(sys.argv[2]), d["pid"]
assert [r["path"] for r in d["watches"][0]["runs"]] == [".", "a"], d["watches"]
assert sorted(x["path"].rsplit("/", 1)[1] for x in d["decisions"]) == ["epoch=1-val_loss=0.4.ckpt", "epoch=2-val_loss=0.3.ckpt"]
assert d["deleted"]["policy"] == 2 and d["freed_bytes"]["policy"] == 8192' st.json "$DPID" ||
                fail "status --json: $(cat st.json)"

        conf "$T/fs/runs" 2 >c.conf
        assert_exit 0 "$CKPTD" reload "$DPID"
        [ "$(state 'd["reload"]["ok"]')" = True ] || fail "reload not applied"
        sed -i 's/keep_top_k = 2;/keep_top_k = "two";/' c.conf
        "$CKPTD" reload "$DPID" 2>err && fail "reload of a rejected config exited 0"
        assert_grep "rejected: $T/c.conf:4: keep_top_k" err
        state 'd["status"]' >status
        assert_grep "reload rejected: $T/c.conf:4: keep_top_k" status
        "$CKPTD" status >st
        assert_grep "reload: *REJECTED .*c.conf:4: keep_top_k" st
        [ "$(metric ckptd_reload_rejected)" = 1 ] || fail "ckptd_reload_rejected $(metric ckptd_reload_rejected)"
        # a newline in the rejected value is escaped once, the same in
        # both lines
        conf "$T/fs/runs" 2 | sed 's/min_free = "1M";/min_free = "1\\nM";/' >c.conf
        "$CKPTD" reload "$DPID" 2>err && fail "reload of a rejected config exited 0"
        "$CKPTD" status >st
        assert_grep 'status: .*reload rejected: .*invalid size "1\\nM"' st
        assert_grep 'reload: *REJECTED .*invalid size "1\\nM"' st
        assert_no_grep '\\\\n' st
        # the daemon runs on, with keep_top_k 2
        alive "$DPID" || fail "ckptd died on a rejected reload"
        conf "$T/fs/runs" 2 >c.conf
        assert_exit 0 "$CKPTD" reload
        state 'd["status"]' >status
        assert_no_grep "reload rejected" status
        stop_daemon d.log
        # its state file goes with it
        [ -z "$(ls rt)" ] || fail "left behind: $(ls rt)"
        assert_exit 1 "$CKPTD" status
}

# `ckptd reload` tells the outcome of a reload that read the config as it
# was when asked, not of one already under way: held by the test seam in a
# removal, a reload of a good config is still going when the config is
# broken and `ckptd reload` asks; it exits 1 with the error.
test_reload_tells_its_own_outcome() {
        local apid rpid rc=0
        setup_fs
        lightning_run fs/runs/a
        conf "$T/fs/runs" 3 >c.conf
        mkfifo hook
        exec 3<>hook # read-write: never blocks
        CKPTD_TEST_HOOK="before:$T/hook" "$CKPTD_HOOKED" -c "$T/c.conf" 2>d.log 3>&- &
        apid=$!
        echo "$apid" >>"$T/pids"
        wait_for 20 grep -q '^ckptd: watching ' d.log || fail "ckptd did not start: $(cat d.log)"
        # a good config that deletes: the reload is held in its removal
        conf "$T/fs/runs" 1 >c.conf
        kill -HUP "$apid"
        wait_for 20 eval '[ "$(readlink /proc/$apid/fd/* 2>/dev/null | grep -c "$T/hook")" -gt 0 ]' ||
                fail "the reload did not reach the removal: $(cat d.log)"
        sed -i 's/keep_top_k = 1;/keep_top_k = "one";/' c.conf
        "$CKPTD" reload "$apid" >out 2>&1 &
        rpid=$!
        # its SIGHUP is pending in the daemon, held in the first reload
        wait_for 20 eval 'grep -q "^SigPnd:.*[1-9a-f]" /proc/$apid/status || grep -q "^ShdPnd:.*[1-9a-f]" /proc/$apid/status' ||
                fail "no SIGHUP pending"
        printf cccc >&3
        wait "$rpid" || rc=$?
        [ "$rc" = 1 ] || fail "ckptd reload exited $rc for a rejected config: $(cat out)"
        assert_grep "rejected: $T/c.conf:4: keep_top_k" out
        exec 3>&-
        kill -TERM "$apid"
        wait_exit "$apid" 0
}

# `ckptd reload` from another time namespace (its CLOCK_MONOTONIC an hour
# behind the daemon's) still tells the outcome of its own reload, not of the
# rejected one before it.
test_reload_from_another_time_namespace() {
        setup_fs
        unshare -T --monotonic -3600 true 2>/dev/null || skip "no time namespaces (unshare -T)"
        lightning_run fs/runs/a
        conf "$T/fs/runs" 1 >c.conf
        start_daemon d.log -c "$T/c.conf"
        sed -i 's/keep_top_k = 1;/keep_top_k = "one";/' c.conf
        assert_exit 1 "$CKPTD" reload "$DPID"
        conf "$T/fs/runs" 1 >c.conf
        assert_exit 0 unshare -T --monotonic -3600 "$CKPTD" reload "$DPID"
        conf "$T/fs/runs" 1 | sed 's/keep_top_k = 1;/keep_top_k = "one";/' >c.conf
        assert_exit 1 unshare -T --monotonic 3600 "$CKPTD" reload "$DPID" 2>err
        assert_grep 'rejected: .*keep_top_k' err
        stop_daemon d.log
}

# Run directories with odd names are in the state file as everywhere else
# (escaped as in the log), beside plain ones written as they are; the file
# stays JSON.
test_odd_run_names_in_the_state_file() {
        setup_fs
        local d
        for d in plain 'a"q' 'b\c' "n$(printf '\nl')" "x$(printf '\377')"; do lightning_run "fs/runs/$d"; done
        conf "$T/fs/runs" 1 >c.conf
        start_daemon d.log -c "$T/c.conf"
        wait_for 10 eval '[ "$(state "sum(r[\"checkpoints\"] for r in d[\"watches\"][0][\"runs\"])")" = 10 ]' ||
                fail "status: $("$CKPTD" status --json 2>&1)"
        "$CKPTD" status --json >st.json || fail "status --json failed"
        $PY -c 'import json, sys; d = json.load(open(sys.argv[1]))["daemons"][0]
runs = sorted((r["path"], r["checkpoints"]) for r in d["watches"][0]["runs"])
want = sorted([(".", 0)] + [(p, 2) for p in ("plain", "a\"q", "b\\\\c", "n\\nl", "x\\xff")])
assert runs == want, runs' st.json || fail "status --json: $(cat st.json)"
        stop_daemon d.log
}

# A daemon killed outright leaves its state file behind, and its pid may go
# to another program: ckptd status shows no daemon for it, and reload sends
# that program no signal. Start times are in clock ticks (10 ms): the
# programs taking the pid start in a later tick than the daemon, as any but
# one started within 10 ms of it would.
test_state_file_of_a_pid_reused_is_no_daemon() {
        local sleeper started
        RUNTIME_DIRECTORY=$T/rt
        mkdir -p rt w
        start_daemon d.log -w "$T/w" --preset lightning
        wait_for 10 test -e "rt/state-$DPID.json" || fail "no state file: $(ls rt)"
        kill -KILL "$DPID"
        wait_for 10 eval "! alive $DPID" || fail "ckptd $DPID still runs"
        [ -e "rt/state-$DPID.json" ] || fail "the state file went with a SIGKILL?"
        started=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["start_ticks"])' "rt/state-$DPID.json")
        wait_for 10 eval '[ "$(awk "{ printf \"%d\", \$1 * 100 }" /proc/uptime)" -gt $((started + 1)) ]' ||
                fail "the clock did not pass the daemon's start ($started ticks)"
        sleep 300 &
        sleeper=$!
        echo "$sleeper" >>"$T/pids"
        mv "rt/state-$DPID.json" "rt/state-$sleeper.json"
        assert_exit 1 "$CKPTD" status
        assert_exit 1 "$CKPTD" reload "$sleeper"
        alive "$sleeper" || fail "reload signalled the program that took the pid"
        kill "$sleeper"
        # a program named like ckptd (another ckptd, a wrapper) took it
        cp "$(command -v sleep)" ckptd-sleep
        ./ckptd-sleep 300 &
        sleeper=$!
        echo "$sleeper" >>"$T/pids"
        wait_for 10 grep -q '^ckptd-sleep$' "/proc/$sleeper/comm" || fail "ckptd-sleep did not start"
        mv rt/state-*.json "rt/state-$sleeper.json"
        assert_exit 1 "$CKPTD" status
        assert_exit 1 "$CKPTD" reload "$sleeper"
        alive "$sleeper" || fail "reload signalled the ckptd-named program that took the pid"
        kill "$sleeper"
}

# A watch on a read-only mount: said once, loudly, with the fix; STATUS=,
# status, the metrics and -t show it.
test_read_only_watch_is_reported() {
        setup_fs
        lightning_run fs/runs/a
        mkdir ro
        mount --bind fs/runs ro && mount -o remount,bind,ro ro || fail "cannot make a read-only bind mount"
        conf "$T/ro" 1 >c.conf
        # -t fails on it
        assert_exit 1 "$CKPTD" -t -c c.conf >t.out 2>&1
        assert_grep "watch *$T/ro: READ-ONLY mount here" t.out
        assert_grep "ReadWritePaths=$T/ro" t.out
        assert_grep "metrics *$T: writable here" t.out
        start_daemon d.log -c "$T/c.conf"
        wait_for 10 eval 'state "d[\"status\"]" | grep -q "$T/ro READ-ONLY: cannot delete"' ||
                fail "STATUS= says: $(state 'd["status"]')"
        assert_grep "$T/ro is on a read-only filesystem here.*ReadWritePaths=$T/ro" d.log
        wait_for 10 eval '[ "$(metric ckptd_watch_read_only)" = 1 ]' || fail "metrics: $(cat metrics.prom)"
        "$CKPTD" status >st
        assert_grep "watch: *$T/ro: present, READ-ONLY: cannot delete" st
        # three idle checks later, still told once
        end=$(($(date +%s) + 3))
        wait_for 10 eval "[ \$(date +%s) -ge $end ]"
        [ "$(grep -c 'is on a read-only filesystem' d.log)" = 1 ] ||
                fail "told $(grep -c 'is on a read-only filesystem' d.log) times: $(cat d.log)"
        stop_daemon d.log
}

# The metrics file's directory read-only: told once with the fix, in STATUS=
# and -t; the daemon runs on.
test_read_only_metrics_directory() {
        setup_fs
        lightning_run fs/runs/a
        mkdir prom ro
        mount --bind prom ro && mount -o remount,bind,ro ro || fail "cannot make a read-only bind mount"
        conf "$T/fs/runs" 1 | sed "s|$T/metrics.prom|$T/ro/ckptd.prom|" >c.conf
        "$CKPTD" -t -c c.conf >t.out 2>&1 || fail "-t: $(cat t.out)"
        assert_grep "metrics *$T/ro: READ-ONLY mount here" t.out
        start_daemon d.log -c "$T/c.conf"
        wait_for 10 eval 'state "d[\"status\"]" | grep -q "metrics file READ-ONLY"' ||
                fail "STATUS= says: $(state 'd["status"]')"
        end=$(($(date +%s) + 3))
        wait_for 10 eval "[ \$(date +%s) -ge $end ]"
        [ "$(grep -c "metrics directory $T/ro is on a read-only mount" d.log)" = 1 ] ||
                fail "told $(grep -c 'metrics directory' d.log) times: $(cat d.log)"
        assert_no_grep "cannot write" d.log
        stop_daemon d.log
}

# A reload that moves metrics_file elsewhere removes the file written at the
# old path (node_exporter would go on exporting its frozen figures beside the
# new ones), and so does one that drops it; a file written over the old path
# by someone else since is left alone. A daemon outside a unit leaves its
# last file when it stops (the units remove it: tests/systemd).
test_reload_moves_the_metrics_file() {
        setup_fs
        lightning_run fs/runs/a
        mkdir prom
        # no idle check rewrites a file during the test: only reloads publish
        conf_at() { conf "$T/fs/runs" 1 | sed -e "s|^metrics_file = .*|metrics_file = \"$1\";|" \
                -e 's/^check_interval = 1;/check_interval = 3600;/'; }
        conf_at "$T/metrics.prom" >c.conf
        start_daemon d.log -c "$T/c.conf"
        wait_for 10 test -s metrics.prom || fail "no metrics file: $(cat d.log)"

        conf_at "$T/prom/ckptd.prom" >c.conf
        assert_exit 0 "$CKPTD" reload "$DPID"
        wait_for 10 test -s prom/ckptd.prom || fail "no metrics file at the new path: $(cat d.log)"
        wait_for 10 eval '! test -e metrics.prom' || fail "the old metrics file stays: $(cat d.log)"
        assert_grep "removed $T/metrics.prom: metrics_file is no longer it" d.log

        conf_at "" >c.conf
        assert_exit 0 "$CKPTD" reload "$DPID"
        wait_for 10 eval '! test -e prom/ckptd.prom' || fail "the dropped metrics file stays: $(cat d.log)"

        conf_at "$T/metrics.prom" >c.conf
        assert_exit 0 "$CKPTD" reload "$DPID"
        wait_for 10 test -s metrics.prom || fail "no metrics file: $(cat d.log)"
        echo 'other_metric 1' >other.prom
        mv other.prom metrics.prom
        conf_at "$T/prom/ckptd.prom" >c.conf
        assert_exit 0 "$CKPTD" reload "$DPID"
        wait_for 10 test -s prom/ckptd.prom || fail "no metrics file at the new path: $(cat d.log)"
        [ "$(cat metrics.prom)" = "other_metric 1" ] || fail "another's file removed or written: $(cat d.log)"
        # the same on ext4, which gives a removed file's inode number to
        # the next file made: another's file there is still not removed
        truncate -s 8M ext4.img && mkfs.ext4 -q -F ext4.img && mkdir ext && mount -o loop ext4.img ext ||
                fail "cannot mount a loop ext4"
        conf_at "$T/ext/m.prom" >c.conf
        assert_exit 0 "$CKPTD" reload "$DPID"
        wait_for 10 test -s ext/m.prom || fail "no metrics file: $(cat d.log)"
        rm ext/m.prom
        echo 'other_metric 2' >ext/m.prom
        conf_at "$T/prom/ckptd.prom" >c.conf
        assert_exit 0 "$CKPTD" reload "$DPID"
        [ "$(cat ext/m.prom)" = "other_metric 2" ] || fail "another's file removed: $(cat d.log)"
        # no unit: no note for ExecStopPost=
        for f in rt/*; do
                case $f in rt/state-*) ;; *) fail "left in the runtime directory: $(ls rt)" ;; esac
        done
        stop_daemon d.log
        assert_grep '^ckptd_reload_rejected 0$' prom/ckptd.prom
}

# --log-format json: one JSON object per line, the journal's fields, names
# escaped as in the journal.
test_json_log_lines() {
        mkdir -p "runs/a"
        for e in 1 2 3; do mkfile "runs/a/epoch=$e-val_loss=0.$e.ckpt" 4; done
        mkfile "runs/a/epoch=4-val_loss=0.9-"$'\n\x1b[31m"q"\xff'".ckpt" 4
        touch -d "-1 hour" runs/a/*
        "$CKPTD" -1 --log-format json -w "$T/runs" --preset lightning --monitor val_loss --keep-top-k 1 \
                --keep-last 0 2>err || fail "-1 failed: $(cat err)"
        cat err
        $PY - "$T/runs/a" err <<'PY' || fail "not JSON lines: $(cat err)"
import json, sys
root, path = sys.argv[1], sys.argv[2]
lines = open(path, "rb").read().decode("utf-8").splitlines()
events = [json.loads(l) for l in lines]
assert all(e["SYSLOG_IDENTIFIER"] == "ckptd" and "MESSAGE" in e and "PRIORITY" in e for e in events)
deleted = {e["CKPTD_PATH"] for e in events if e.get("CKPTD_ACTION") == "delete"}
odd = root + "/epoch=4-val_loss=0.9-\\n\\x1b[31m\"q\"\\xff.ckpt"
want = {root + "/epoch=2-val_loss=0.2.ckpt", root + "/epoch=3-val_loss=0.3.ckpt", odd}
assert deleted == want, deleted
e = [e for e in events if e.get("CKPTD_PATH") == odd][0]
assert e["MESSAGE_ID"] == "5b7c0d1a3e2f4a6b8c9d0e1f2a3b4c01" and e["CKPTD_REASON"] == "policy", e
assert e["CKPTD_BYTES"] == "4096", e
e = [e for e in events if e.get("CKPTD_PATH") == root + "/epoch=2-val_loss=0.2.ckpt"][0]
assert e["CKPTD_MONITOR"] == "val_loss" and abs(float(e["CKPTD_VALUE"]) - 0.2) < 1e-9, e
assert int(e["__REALTIME_TIMESTAMP"]) > 0
PY
        assert_names runs/a "epoch=1-val_loss=0.1.ckpt"
        assert_exit 2 "$CKPTD" --log-format yaml -t
}

# Saves in quick succession: the metrics and state files are rewritten at
# most once a second, yet they come to tell the last deletion of a burst
# (within a second, ckptd(8)) without anything else happening, and the
# metrics file left behind at SIGTERM tells the deletions made just before.
test_burst_converges_and_stop_publishes() {
        RUNTIME_DIRECTORY=$T/rt
        mkdir -p rt runs
        cat >c.conf <<EOC
check_interval = 3600;
metrics_file = "$T/metrics.prom";
watch = ( { path = "$T/runs"; pattern = "step_{step}.pt"; keep_last = 1; settle = 0; } );
EOC
        start_daemon d.log -c "$T/c.conf"
        local i
        for i in $(seq 1 20); do
                : >"runs/step_$i.pt"
                wait_for 10 test ! -e "runs/step_$((i - 1)).pt" || fail "step_$((i - 1)).pt not deleted: $(cat d.log)"
        done
        # no idle check comes (check_interval 1 h): only the pending publish
        wait_for 10 eval '[ "$(metric ckptd_deleted_total)" = 19 ]' ||
                fail "metrics say $(metric ckptd_deleted_total) deleted, not 19: $(cat metrics.prom)"
        wait_for 10 eval '[ "$(state "d[\"deleted\"][\"policy\"]")" = 19 ]' ||
                fail "ckptd status says $(state 'd["deleted"]["policy"]') deleted, not 19"
        [ "$(state 'd["watches"][0]["checkpoints"]')" = 1 ] || fail "status: $(state 'd["watches"]')"

        # two more deletions well within a second, then SIGTERM at once
        for i in 21 22; do
                : >"runs/step_$i.pt"
                wait_for 10 grep -q "deleted $T/runs/step_$((i - 1)).pt" d.log || fail "step_$((i - 1)).pt: $(cat d.log)"
        done
        stop_daemon d.log
        [ "$(metric ckptd_deleted_total)" = 21 ] ||
                fail "the metrics file left at exit says $(metric ckptd_deleted_total) deleted, not 21: $(cat metrics.prom)"
        [ -z "$(ls rt)" ] || fail "left behind: $(ls rt)"
}

run_tests
