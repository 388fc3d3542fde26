#!/usr/bin/env bash
# ckptd under a real systemd. Each test boots /lib/systemd/systemd as PID 1 of
# its own pid, mount and cgroup namespaces, chrooted into an overlay of /
# (upper layer on a tmpfs, so the host is never written), with
# `make install DESTDIR=<overlay root> PREFIX=/usr` done inside. systemctl and
# journalctl reach it with nsenter. Tests that need the daemon mode skip while
# the binary still says it is not built.
. "$(dirname "$0")/../lib.sh"

REPO=$(cd "$(dirname "$0")/../.." && pwd)
MSGID_DELETED=5b7c0d1a3e2f4a6b8c9d0e1f2a3b4c01
MSGID_RELOADED=5b7c0d1a3e2f4a6b8c9d0e1f2a3b4c05
MSGID_CONFIG_REJECTED=5b7c0d1a3e2f4a6b8c9d0e1f2a3b4c06
# Watched tree inside the overlay, and the same place seen from the host.
RUNS=/srv/ckptd-test/runs
# A sanitizer build is installed as it is; ASan must not change RLIMIT_CORE,
# which the unit's SystemCallFilter=~@resources forbids.
case $CKPTD in */build/san/ckptd) MAKE_SAN=SANITIZE=1 ;; *) MAKE_SAN=SANITIZE= ;; esac

# in_ns CMD...: run CMD inside the booted instance (its mounts, pids, root).
in_ns() {
        nsenter -t "$SPID" -m -p -r -w -- "$@"
}

sctl() { in_ns systemctl --no-pager "$@"; }
prop() { sctl show -P "$2" "$1"; }

need_systemd_tools() {
        need_root
        [ -x /lib/systemd/systemd ] || skip "no /lib/systemd/systemd"
        command -v nsenter >/dev/null && command -v unshare >/dev/null || skip "no nsenter/unshare"
        grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
                skip "no overlayfs"
}

# The cgroup2 hierarchy the booted systemd gets a subtree of, or "".
cgroup2_root() {
        if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
                echo /sys/fs/cgroup
        elif [ -d /sys/fs/cgroup/unified ] && [ "$(stat -fc %T /sys/fs/cgroup/unified)" = cgroup2fs ]; then
                echo /sys/fs/cgroup/unified
        fi
}

daemon_built() {
        ! grep -qa 'the daemon mode is not built yet' "$CKPTD"
}

need_daemon() {
        daemon_built || skip "needs the daemon mode (ckptd says it is not built yet)"
}

# seed_config KEEP_TOP_K: the test watch, Lightning names, quick settle.
seed_config() {
        cat <<EOF
log_level = "debug";
watch = (
  { path = "$RUNS"; preset = "lightning"; monitor = "val_loss";
    keep_top_k = $1; keep_last = 1; settle = 0.2; }
);
EOF
}

# ckpt DIR EPOCH LOSS [AGE]: a Lightning checkpoint of 4 KiB.
ckpt() {
        local f="$1/epoch=$2-step=$((($2 + 1) * 100))-val_loss=$3.ckpt"
        head -c 4096 /dev/urandom >"$f.part"
        [ -z "${4:-}" ] || touch -d "$4" "$f.part"
        mv "$f.part" "$f"
}

# The six epochs of an old run: the best two by val_loss are epochs 4 and 2,
# the newest is 5.
OLD_LOSSES=(0.9 0.7 0.5 0.55 0.45 0.6)
old_run() {
        mkdir -p "$1"
        for e in "${!OLD_LOSSES[@]}"; do ckpt "$1" "$e" "${OLD_LOSSES[$e]}" "-1 hour"; done
}
name() { echo "epoch=$1-step=$((($1 + 1) * 100))-val_loss=$2.ckpt"; }

# names_are DIR NAME...: like assert_names, but a condition for wait_for.
names_are() {
        local dir=$1
        shift
        [ "$(printf '%s\n' "$@" | LC_ALL=C sort)" = "$(ls_names "$dir")" ]
}

# forked: the child of unshare exists; it becomes the namespace's PID 1.
forked() {
        local c
        c=$(cat "/proc/$UPID/task/$UPID/children" 2>/dev/null) || return 1
        SPID=${c%% *}
        [ -n "$SPID" ]
}

booted() {
        local s
        s=$(sctl is-system-running 2>/dev/null) || true
        [ "$s" = running ] || [ "$s" = degraded ]
}

# sd_boot: boot systemd over an overlay of /, with $T/seed copied over the
# installed files. Sets SPID (systemd's pid here), UPID (unshare) and RR
# (the overlay root, reachable from here through /proc).
sd_boot() {
        local cg cgroot cur
        need_systemd_tools
        cgroot=$(cgroup2_root)
        [ -n "$cgroot" ] || skip "no cgroup2 hierarchy"
        # Build on the host, so that the install inside only copies.
        make -s -C "$REPO" $MAKE_SAN all >"$T/build.log" 2>&1 || fail "make: $(tail -n 20 "$T/build.log")"

        mkdir -p "$T/root" "$T/ov" "$T/seed/etc/systemd/system" "$T/seed/etc/ckptd"
        # No timers (apt-daily & co. would run at boot), nothing but basic.target.
        ln -sf /dev/null "$T/seed/etc/systemd/system/timers.target"
        : >"$T/console"
        cat >"$T/boot.sh" <<EOF
set -e
mount -t tmpfs -o mode=755 ckptd-test "$T/ov"
mkdir "$T/ov/upper" "$T/ov/work"
mount -t overlay ckptd-test -o "lowerdir=/,upperdir=$T/ov/upper,workdir=$T/ov/work" "$T/root"
R="$T/root"
mount -t tmpfs -o mode=755 tmpfs "\$R/run"
mount -t tmpfs -o mode=1777 tmpfs "\$R/tmp"
mount --rbind /dev "\$R/dev"
# systemd logs to its journal; its console is a file, and nothing reaches the
# host's kernel log.
mount --bind "$T/console" "\$R/dev/console"
mount --bind /dev/null "\$R/dev/kmsg"
mount -t proc proc "\$R/proc"
mount -t sysfs sysfs "\$R/sys"
mount -t cgroup2 cgroup2 "\$R/sys/fs/cgroup"
# The watched trees live on file systems of their own, as on a real host:
# overlayfs reports the st_dev of the layer for files, not the overlay's.
mkdir -p "\$R/srv/ckptd-test"
mount -t tmpfs -o size=64m ckptd-data "\$R/srv/ckptd-test"
mount -t tmpfs -o size=64m ckptd-home "\$R/home"
make -C "$REPO" $MAKE_SAN install DESTDIR="\$R" PREFIX=/usr >"$T/install.log" 2>&1
cp -a "$T/seed/." "\$R/"
exec chroot "\$R" /usr/bin/env -i container=ckptd-test \
        /lib/systemd/systemd --unit=basic.target --show-status=no --log-target=journal-or-kmsg
EOF
        # A cgroup of its own, so that systemd's tree is a subtree of ours and
        # everything in it can be accounted for at the end.
        cur=$(sed -n 's/^0:://p' /proc/self/cgroup)
        cg="$cgroot${cur%/}/ckptd-test.$$.$RANDOM"
        mkdir "$cg" || skip "cannot create a cgroup under $cgroot$cur"
        CG=$cg
        trap sd_shutdown EXIT
        (
                echo "$BASHPID" >"$cg/cgroup.procs"
                # --kill-child: if unshare is killed, so is everything inside.
                exec unshare --pid --fork --kill-child --mount --cgroup --propagation private \
                        bash "$T/boot.sh"
        ) >"$T/boot.log" 2>&1 &
        UPID=$!
        wait_for 10 forked || fail "unshare did not fork: $(cat "$T/boot.log")"
        RR=/proc/$SPID/root
        wait_for 60 booted || fail "systemd did not boot: $(cat "$T/boot.log" "$T/install.log" "$T/console" 2>/dev/null | tail -n 30)"
}

# Power the instance off (PID 1 then exits and takes the namespaces with it),
# kill it if that hangs, and remove its cgroups.
sd_shutdown() {
        if [ -n "${UPID:-}" ] && kill -0 "$UPID" 2>/dev/null; then
                if [ -n "${SPID:-}" ] && booted; then
                        timeout 10 nsenter -t "$SPID" -m -p -r -w -- systemctl poweroff >/dev/null 2>&1 || true
                fi
                # unshare ignores SIGTERM while it waits; on SIGKILL its
                # --kill-child (a parent-death signal) SIGKILLs the
                # namespace's PID 1, and with it every process inside.
                wait_for 15 eval "! kill -0 $UPID 2>/dev/null" || kill -KILL "$UPID" 2>/dev/null || true
                wait "$UPID" 2>/dev/null || true
        fi
        if [ -n "${CG:-}" ] && [ -d "$CG" ]; then
                wait_for 10 grep -q '^populated 0' "$CG/cgroup.events" || true
                find "$CG" -depth -type d -exec rmdir {} + 2>/dev/null || true
        fi
}

# dropin NAME TEXT: /etc/systemd/system/ckptd.service.d/NAME.conf, then
# daemon-reload -- what `systemctl edit ckptd` does.
dropin() {
        mkdir -p "$RR/etc/systemd/system/ckptd.service.d"
        printf '[Service]\n%s\n' "$2" >"$RR/etc/systemd/system/ckptd.service.d/$1.conf"
        sctl daemon-reload
}

# journal_has MSGID FIELD=VALUE...: a ckptd.service entry with MESSAGE_ID and
# every field given, in `journalctl -u ckptd -o json`.
journal_has() {
        local id=$1
        shift
        in_ns journalctl -u ckptd.service -o json --no-pager 2>/dev/null | python3 -c '
import json, sys
want = dict(a.split("=", 1) for a in sys.argv[2:])
want["MESSAGE_ID"] = sys.argv[1]
for line in sys.stdin:
    e = json.loads(line)
    if all(e.get(k) == v for k, v in want.items()):
        sys.exit(0)
sys.exit(1)' "$id" "$@"
}

# oneshot: start the unit (a oneshot drop-in is in place), as often as needed.
oneshot() {
        sctl reset-failed ckptd.service 2>/dev/null || true
        sctl start ckptd.service
}

journal_dump() {
        in_ns journalctl -u ckptd.service --no-pager -o cat 2>&1 | tail -n 30
}

# --- what needs no booted systemd

# The shipped unit rates SAFE; every hardening line carries a comment.
test_security_exposure_offline() {
        command -v systemd-analyze >/dev/null || skip "no systemd-analyze"
        for u in ckptd.service ckptd@.service; do
                cp "$REPO/systemd/$u" "$T/${u/@/@i}"
                out=$(systemd-analyze security --offline=yes "$T/${u/@/@i}" 2>&1) || true
                exp=$(echo "$out" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
                echo "$u exposure $exp"
                [ -n "$exp" ] || fail "no exposure figure: $out"
                awk -v e="$exp" 'BEGIN { exit !(e <= 1.0) }' || fail "$u exposure $exp > 1.0"
        done
        # a hardening directive without a comment line right above it
        awk '/^\[Service\]/ { s = 1 } /^\[Install\]/ { s = 0 }
             s && /^(Protect|Private|Restrict|SystemCall|Capability|NoNew|Lock|Memory|Device|IPAddress|Keyring|RemoveIPC|UMask|ProcSubset|AmbientCap)/ {
                     if (prev !~ /^#/) { print FILENAME ": " $0; bad = 1 } }
             { prev = $0 } END { exit bad }' \
                "$REPO/systemd/ckptd.service" "$REPO/systemd/ckptd@.service" || fail "uncommented hardening line"
}

# make install honours PREFIX and DESTDIR, rewrites ExecStart, never replaces
# a config, and uninstall removes what install put except the config.
test_install_uninstall() {
        local d=$T/dest units userunits
        make -s -C "$REPO" $MAKE_SAN install DESTDIR="$d" PREFIX=/usr/local >out 2>&1 || fail "$(cat out)"
        units=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || true)
        units=${units:-/lib/systemd/system}
        userunits=$(pkg-config --variable=systemduserunitdir systemd 2>/dev/null || true)
        userunits=${userunits:-/usr/lib/systemd/user}
        for f in /usr/local/bin/ckptd "$units/ckptd.service" "$units/ckptd@.service" \
                "$userunits/ckptd.service" /usr/lib/systemd/catalog/ckptd.catalog \
                /usr/share/bash-completion/completions/ckptd /usr/local/share/man/man8/ckptd.8 \
                /usr/local/share/man/man5/ckptd.conf.5 /etc/ckptd/ckptd.conf; do
                assert_exists "$d$f"
        done
        assert_grep '^ExecStart=/usr/local/bin/ckptd$' "$d$units/ckptd.service"
        assert_grep '^ExecStart=/usr/local/bin/ckptd -c /etc/ckptd/%i.conf$' "$d$units/ckptd@.service"
        assert_grep '^ExecStart=/usr/local/bin/ckptd -c %E/ckptd/ckptd.conf$' "$d$userunits/ckptd.service"
        assert_grep 'journalctl --update-catalog' out
        cmp -s "$REPO/config/ckptd.conf" "$d/etc/ckptd/ckptd.conf" || fail "example config not installed as is"

        echo "# mine" >"$d/etc/ckptd/ckptd.conf"
        make -s -C "$REPO" $MAKE_SAN install DESTDIR="$d" PREFIX=/usr/local >out 2>&1 || fail "$(cat out)"
        assert_grep '^# mine$' "$d/etc/ckptd/ckptd.conf"
        assert_grep 'keeping existing' out

        make -s -C "$REPO" uninstall DESTDIR="$d" PREFIX=/usr/local >out 2>&1 || fail "$(cat out)"
        left=$(cd "$d" && find . -type f | sort)
        [ "$left" = "./etc/ckptd/ckptd.conf" ] || fail "uninstall left: $left"
}

# --- under a booted systemd

# Boots; the installed units verify; the installed unit rates SAFE online;
# the catalog is found; and `ckptd -1` under the unit's full sandbox deletes
# another user's checkpoints in a sticky directory (CAP_DAC_OVERRIDE,
# CAP_FOWNER, the syscall filter), deletes nothing without the
# ReadWritePaths= drop-in, and reaches /home only with the documented recipe.
test_boot_sandbox_once() {
        sd_boot
        in_ns systemd-analyze verify /lib/systemd/system/ckptd.service /lib/systemd/system/ckptd@.service \
                >verify 2>&1 || fail "verify: $(cat verify)"
        [ ! -s verify ] || fail "verify says: $(cat verify)"
        exp=$(in_ns systemd-analyze security ckptd.service 2>&1 | sed -n 's/.*Overall exposure level for ckptd.service: \([0-9.]*\) .*/\1/p')
        echo "online exposure $exp"
        awk -v e="${exp:-9}" 'BEGIN { exit !(e <= 1.0) }' || fail "online exposure '$exp' > 1.0"
        in_ns journalctl --update-catalog
        in_ns journalctl --dump-catalog "$MSGID_DELETED" | grep -q 'Checkpoint deleted' ||
                fail "catalog entry $MSGID_DELETED not found"

        # Another user's run in a sticky directory that root does not own.
        mkdir -p "$RR/srv/ckptd-test"
        old_run "$RR$RUNS"
        chown -R 1234:1234 "$RR/srv/ckptd-test"
        chmod 1755 "$RR$RUNS"
        seed_config 2 >"$RR/etc/ckptd/ckptd.conf"
        all=$(ls_names "$RR$RUNS")
        dropin 10-once "Type=oneshot
Restart=no
WatchdogSec=0
ExecStart=
ExecStart=/usr/bin/ckptd -1
Environment=ASAN_OPTIONS=disable_coredump=0"

        # Without ReadWritePaths= the tree is read-only for the service.
        oneshot || true
        [ "$(ls_names "$RR$RUNS")" = "$all" ] || fail "deleted without ReadWritePaths="

        dropin 20-rw "ReadWritePaths=/srv/ckptd-test"
        oneshot || fail "ckptd -1 failed: $(journal_dump)"
        assert_names "$RR$RUNS" "$(name 2 0.5)" "$(name 4 0.45)" "$(name 5 0.6)"
        journal_has "$MSGID_DELETED" CKPTD_ACTION=delete CKPTD_REASON=policy \
                "CKPTD_PATH=$RUNS/$(name 0 0.9)" || fail "no journal entry: $(journal_dump)"

        # Below /home (ckptd(8), SERVICE): ProtectHome=yes hides it and masks
        # a ReadWritePaths= below it; ProtectHome=read-only + ReadWritePaths=
        # and ProtectHome=tmpfs + BindPaths= both work.
        home=/home/alice/runs
        sed "s|$RUNS|$home|" "$RR/etc/ckptd/ckptd.conf" >"$RR/etc/ckptd/home.conf"
        dropin 30-home "ExecStart=
ExecStart=/usr/bin/ckptd -1 -c /etc/ckptd/home.conf"
        for recipe in "" "ReadWritePaths=$home" "ProtectHome=read-only
ReadWritePaths=$home" "ProtectHome=tmpfs
BindPaths=$home"; do
                rm -rf "$RR/home/alice"
                old_run "$RR$home"
                chown -R 1234:1234 "$RR/home/alice"
                rm -f "$RR/etc/systemd/system/ckptd.service.d/40-home.conf"
                dropin 40-home "$recipe"
                oneshot || true
                case $recipe in
                "" | ReadWritePaths=*)
                        [ "$(ls_names "$RR$home" | wc -l)" = 6 ] || fail "/home reached with: $recipe" ;;
                *)
                        names_are "$RR$home" "$(name 2 0.5)" "$(name 4 0.45)" "$(name 5 0.6)" ||
                                fail "$recipe: $(ls_names "$RR$home") $(journal_dump)" ;;
                esac
        done
}

# daemon_boot KEEP_TOP_K: boot with the test config, the old run and the
# ReadWritePaths= drop-in in place; the service is not started.
daemon_boot() {
        need_daemon
        sd_boot
        mkdir -p "$RR/srv/ckptd-test"
        old_run "$RR$RUNS"
        seed_config "$1" >"$RR/etc/ckptd/ckptd.conf"
        dropin 20-rw "ReadWritePaths=/srv/ckptd-test
Environment=ASAN_OPTIONS=disable_coredump=0"
}

# `systemctl start` returns only after READY=1, and by then the first scan
# has been applied; new checkpoints are retained per policy and logged with
# their fields; `systemctl stop` is clean.
test_start_ready_retain_stop() {
        daemon_boot 2
        # Hold the main process before it execs ckptd: the unit must stay
        # "activating" and `systemctl start` must wait.
        mkfifo "$RR/run/ckptd-gate"
        dropin 30-gate "ExecStart=
ExecStart=/bin/sh -c 'read -r _ </run/ckptd-gate; exec /usr/bin/ckptd'"
        sctl start ckptd.service >start.out 2>&1 &
        spid=$!
        wait_for 10 eval '[ "$(prop ckptd.service SubState)" = start ]' || fail "not starting: $(prop ckptd.service SubState)"
        [ "$(prop ckptd.service ActiveState)" = activating ] || fail "active before READY"
        kill -0 "$spid" 2>/dev/null || fail "systemctl start returned before READY"
        echo go >"$RR/run/ckptd-gate"
        wait "$spid" || fail "systemctl start failed: $(cat start.out) $(journal_dump)"
        [ "$(prop ckptd.service ActiveState)" = active ] || fail "not active after start"
        # READY=1 comes after the first scan was applied.
        assert_names "$RR$RUNS" "$(name 2 0.5)" "$(name 4 0.45)" "$(name 5 0.6)"
        [ -n "$(prop ckptd.service StatusText)" ] || fail "no STATUS="

        # A new best: epochs 2 and 5 go.
        ckpt "$RR$RUNS" 6 0.4
        wait_for 10 names_are "$RR$RUNS" "$(name 4 0.45)" "$(name 6 0.4)" ||
                fail "not retained: $(ls_names "$RR$RUNS") $(journal_dump)"
        wait_for 10 journal_has "$MSGID_DELETED" CKPTD_ACTION=delete CKPTD_REASON=policy \
                "CKPTD_PATH=$RUNS/$(name 5 0.6)" CKPTD_RUN=. CKPTD_MONITOR=val_loss CKPTD_BYTES=4096 ||
                fail "deletion not in the journal: $(journal_dump)"
        # CKPTD_VALUE is the metric printed with %.17g: 0.59999999999999998
        in_ns journalctl -u ckptd.service -o json --no-pager | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    if e.get("CKPTD_PATH", "").endswith(sys.argv[1]) and abs(float(e.get("CKPTD_VALUE", "nan")) - 0.6) < 1e-9:
        sys.exit(0)
sys.exit(1)' "$(name 5 0.6)" || fail "no CKPTD_VALUE=0.6 for $(name 5 0.6)"

        sctl stop ckptd.service || fail "stop failed"
        [ "$(prop ckptd.service ActiveState)" = inactive ] || fail "not inactive: $(prop ckptd.service ActiveState)"
        [ "$(prop ckptd.service Result)" = success ] || fail "stop result $(prop ckptd.service Result)"
        [ "$(prop ckptd.service ExecMainStatus)" = 0 ] || fail "exit status $(prop ckptd.service ExecMainStatus)"
}

# `systemctl reload` applies a new config; a broken one is rejected, the
# service stays active with the same pid, and the previous config stays.
test_reload_applies_and_rejects() {
        daemon_boot 2
        sctl start ckptd.service || fail "start failed: $(journal_dump)"
        pid=$(prop ckptd.service MainPID)
        seed_config 1 >"$RR/etc/ckptd/ckptd.conf"
        sctl reload ckptd.service || fail "reload failed"
        wait_for 10 journal_has "$MSGID_RELOADED" || fail "no reloaded message: $(journal_dump)"
        wait_for 10 eval '[ "$(prop ckptd.service ActiveState)" = active ]' || fail "not active after reload"
        # keep_top_k 1 + last: epoch 6 is best and newest, then epoch 7 newest.
        ckpt "$RR$RUNS" 6 0.4
        ckpt "$RR$RUNS" 7 0.42
        wait_for 10 names_are "$RR$RUNS" "$(name 6 0.4)" "$(name 7 0.42)" ||
                fail "new config not applied: $(ls_names "$RR$RUNS") $(journal_dump)"

        sed -i 's/keep_top_k = 1;/keep_top_k = "one";/' "$RR/etc/ckptd/ckptd.conf"
        # ExecReload= (ckptd reload) waits for the outcome: a rejected config
        # fails the reload, with its FILE:LINE in the journal and in STATUS=
        sctl reload ckptd.service 2>reload.err && fail "reload of a rejected config succeeded"
        wait_for 10 journal_has "$MSGID_CONFIG_REJECTED" || fail "no rejected message: $(journal_dump)"
        in_ns journalctl -u ckptd.service --no-pager -o cat | grep -q 'ckptd reload: rejected: /etc/ckptd/ckptd.conf:4: keep_top_k' ||
                fail "the reload's error is not in the journal: $(journal_dump)"
        prop ckptd.service StatusText | grep -q 'reload rejected: /etc/ckptd/ckptd.conf:4: keep_top_k' ||
                fail "STATUS= does not name the rejection: $(prop ckptd.service StatusText)"
        wait_for 10 eval '[ "$(prop ckptd.service ActiveState)" = active ]' || fail "not active after a bad reload"
        [ "$(prop ckptd.service MainPID)" = "$pid" ] || fail "restarted on a bad config"
        # still keep_top_k 1: epoch 8 is best and newest, alone.
        ckpt "$RR$RUNS" 8 0.39
        wait_for 10 names_are "$RR$RUNS" "$(name 8 0.39)" ||
                fail "old config not in force: $(ls_names "$RR$RUNS") $(journal_dump)"
}

# Without ReadWritePaths= the watch is read-only in the unit's sandbox:
# STATUS= and the journal say so with the fix, and `ckptd -t` run outside the
# sandbox reads the unit's ReadWritePaths=. With it, the idle check
# (check_interval) keeps STATUS= current while another program fills the
# file system; `ckptd status` reads the daemon's state.
test_read_only_watch_and_idle_status() {
        need_daemon
        sd_boot
        mkdir -p "$RR/srv/ckptd-test/other"
        old_run "$RR$RUNS"
        printf '%s\n' 'check_interval = 1;' 'watch = (' \
                "  { path = \"$RUNS\"; preset = \"lightning\"; monitor = \"val_loss\";" \
                '    keep_top_k = 2; keep_last = 1; settle = 0.2; min_free = "1M"; }' ');' \
                >"$RR/etc/ckptd/ckptd.conf"
        dropin 10-asan "Environment=ASAN_OPTIONS=disable_coredump=0"
        sctl start ckptd.service || fail "start failed: $(journal_dump)"
        wait_for 10 eval 'prop ckptd.service StatusText | grep -q "$RUNS READ-ONLY: cannot delete"' ||
                fail "STATUS=: $(prop ckptd.service StatusText)"
        in_ns journalctl -u ckptd.service --no-pager -o cat | grep -q "read-only.*ReadWritePaths=$RUNS" ||
                fail "no fix in the journal: $(journal_dump)"
        in_ns /usr/bin/ckptd -t >t.out 2>&1 || true
        grep -q "watch *$RUNS: READ-ONLY for the service: add ReadWritePaths=$RUNS with 'systemctl edit ckptd.service'" t.out ||
                fail "-t: $(cat t.out)"

        dropin 20-rw "ReadWritePaths=/srv/ckptd-test"
        in_ns /usr/bin/ckptd -t >t.out 2>&1 || fail "-t: $(cat t.out)"
        grep -q "watch *$RUNS: writable for the service" t.out || fail "-t: $(cat t.out)"
        sctl restart ckptd.service || fail "restart failed: $(journal_dump)"
        names_are "$RR$RUNS" "$(name 2 0.5)" "$(name 4 0.45)" "$(name 5 0.6)" || fail "not swept: $(ls_names "$RR$RUNS")"
        wait_for 10 eval 'prop ckptd.service StatusText | grep -q " free, floor 1M"' ||
                fail "STATUS=: $(prop ckptd.service StatusText)"
        before=$(prop ckptd.service StatusText)
        dd if=/dev/zero of="$RR/srv/ckptd-test/other/filler" bs=1M count=20 status=none
        wait_for 10 eval '[ "$(prop ckptd.service StatusText)" != "$before" ]' ||
                fail "STATUS= stale after the idle check: $before"
        echo "STATUS= before: $before; after: $(prop ckptd.service StatusText)"
        in_ns /usr/bin/ckptd status >st 2>&1 || fail "status: $(cat st)"
        grep -q "(ckptd.service)" st && grep -q "delete .*$RUNS/$(name 0 0.9)" st || fail "status: $(cat st)"
}

# A stalled event loop (SIGSTOP) misses the watchdog; systemd kills and
# restarts ckptd with a new pid.
test_watchdog_restarts_a_stalled_daemon() {
        daemon_boot 2
        dropin 30-watchdog "WatchdogSec=3s
TimeoutAbortSec=5s
RestartSec=100ms"
        sctl start ckptd.service || fail "start failed: $(journal_dump)"
        pid=$(prop ckptd.service MainPID)
        in_ns kill -STOP "$pid"
        wait_for 20 eval 'p=$(prop ckptd.service MainPID); [ "$p" != "$pid" ] && [ "$p" != 0 ] &&
                [ "$(prop ckptd.service ActiveState)" = active ]' ||
                fail "not restarted: $(prop ckptd.service ActiveState) $(journal_dump)"
        [ "$(prop ckptd.service NRestarts)" -ge 1 ] || fail "NRestarts $(prop ckptd.service NRestarts)"
        in_ns journalctl -u ckptd.service --no-pager | grep -qi 'watchdog timeout' || fail "no watchdog timeout logged"
}

# The user unit: a researcher's own ckptd under `systemd --user`, with the
# config in ~/.config/ckptd (%E), running as that user.
test_user_unit_for_a_researcher() {
        need_daemon
        command -v useradd >/dev/null && command -v runuser >/dev/null || skip "no useradd/runuser"
        sd_boot
        in_ns useradd -m -u 1234 alice
        mkdir -p "$RR/home/alice/.config/ckptd"
        old_run "$RR/home/alice/runs"
        seed_config 2 | sed "s|$RUNS|/home/alice/runs|" >"$RR/home/alice/.config/ckptd/ckptd.conf"
        in_ns chown -R alice:alice /home/alice
        sctl start user@1234.service || fail "no user manager"
        usctl() { in_ns runuser -u alice -- env XDG_RUNTIME_DIR=/run/user/1234 systemctl --user --no-pager "$@"; }
        usctl start ckptd.service || fail "start failed: $(usctl status ckptd.service 2>&1)"
        [ "$(usctl show -P ActiveState ckptd.service)" = active ] || fail "not active"
        pid=$(usctl show -P MainPID ckptd.service)
        [ "$(in_ns stat -c %u "/proc/$pid")" = 1234 ] || fail "not running as alice"
        assert_names "$RR/home/alice/runs" "$(name 2 0.5)" "$(name 4 0.45)" "$(name 5 0.6)"
        usctl stop ckptd.service || fail "stop failed"
}

# The metrics file goes when the service stops (ExecStopPost=): node_exporter
# must not export the figures of a daemon that is not running. The file goes
# that the daemon wrote, whatever its config says by then.
test_metrics_file_removed_on_stop() {
        daemon_boot 2
        echo 'metrics_file = "/srv/ckptd-test/ckptd.prom";' >>"$RR/etc/ckptd/ckptd.conf"
        sctl start ckptd.service || fail "start failed: $(journal_dump)"
        wait_for 10 test -s "$RR/srv/ckptd-test/ckptd.prom" || fail "no metrics file: $(journal_dump)"
        sctl stop ckptd.service || fail "stop failed"
        [ "$(prop ckptd.service Result)" = success ] || fail "stop result $(prop ckptd.service Result)"
        assert_absent "$RR/srv/ckptd-test/ckptd.prom"
        assert_absent "$RR/run/ckptd/ckptd.service.metrics"

        # the config edited to another path, then a restart: the file the
        # stopped daemon wrote goes, not the one the config names by then
        sctl start ckptd.service || fail "start failed: $(journal_dump)"
        wait_for 10 test -s "$RR/srv/ckptd-test/ckptd.prom" || fail "no metrics file: $(journal_dump)"
        [ "$(cat "$RR/run/ckptd/ckptd.service.metrics")" = /srv/ckptd-test/ckptd.prom ] ||
                fail "note: $(cat "$RR/run/ckptd/ckptd.service.metrics")"
        sed -i 's|/srv/ckptd-test/ckptd.prom|/srv/ckptd-test/new.prom|' "$RR/etc/ckptd/ckptd.conf"
        sctl restart ckptd.service || fail "restart failed: $(journal_dump)"
        wait_for 10 test -s "$RR/srv/ckptd-test/new.prom" || fail "no metrics file at the new path: $(journal_dump)"
        assert_absent "$RR/srv/ckptd-test/ckptd.prom"
        sctl stop ckptd.service || fail "stop failed"
        assert_absent "$RR/srv/ckptd-test/new.prom"

        # a path ending in a newline: that file goes, not another's beside it
        sed -i 's|/srv/ckptd-test/new.prom|/srv/ckptd-test/nl.prom\\n|' "$RR/etc/ckptd/ckptd.conf"
        echo other >"$RR/srv/ckptd-test/nl.prom"
        sctl start ckptd.service || fail "start failed: $(journal_dump)"
        wait_for 10 test -s "$RR/srv/ckptd-test/nl.prom"$'\n' || fail "no metrics file: $(journal_dump)"
        sctl stop ckptd.service || fail "stop failed"
        assert_absent "$RR/srv/ckptd-test/nl.prom"$'\n'
        [ "$(cat "$RR/srv/ckptd-test/nl.prom")" = other ] || fail "another file removed"

        # without the note the stop removes nothing: the path is not read
        # back from the escaped line `ckptd -t` prints for people, where a
        # comma and "metrics" in it, or an escape, named another file
        sed -i 's|/srv/ckptd-test/nl.prom\\n|/srv/ckptd-test/x, metrics /srv/ckptd-test/other.prom|' \
                "$RR/etc/ckptd/ckptd.conf"
        echo other >"$RR/srv/ckptd-test/other.prom"
        mkdir -p "$RR/srv/ckptd-test/x, metrics /srv/ckptd-test"
        sctl start ckptd.service || fail "start failed: $(journal_dump)"
        wait_for 10 test -s "$RR/srv/ckptd-test/x, metrics /srv/ckptd-test/other.prom" ||
                fail "no metrics file: $(journal_dump)"
        rm "$RR/run/ckptd/ckptd.service.metrics"
        sctl stop ckptd.service || fail "stop failed"
        [ "$(cat "$RR/srv/ckptd-test/other.prom")" = other ] || fail "another file removed"
}

run_tests
