#!/usr/bin/env bash
# What the Makefile, the shipped config and the man pages give an operator:
# the install paths, the build flags a package passes, the missing-package
# step, an inert conffile, the man page footer.
. "$(dirname "$0")/../lib.sh"

REPO=$(cd "$(dirname "$0")/../.." && pwd)

# ckptd goes where a normal user's PATH finds it, and the units start it there.
test_install_goes_to_usr_bin() {
        make -s -n -C "$REPO" SANITIZE= install PREFIX=/usr DESTDIR=/nonexistent >plan || fail "make -n install failed"
        assert_grep ' /nonexistent/usr/bin/ckptd$' plan
        assert_no_grep 'sbin' plan
        grep -qF "sed 's|/usr/bin/ckptd|/usr/bin/ckptd|g' systemd/ckptd.service" plan ||
                fail "units not installed for /usr/bin: $(cat plan)"
        make -s -n -C "$REPO" SANITIZE= install DESTDIR=/nonexistent >plan || fail "make -n install failed"
        assert_grep ' /nonexistent/usr/local/bin/ckptd$' plan
        grep -qF "sed 's|/usr/bin/ckptd|/usr/local/bin/ckptd|g' systemd/ckptd.service" plan ||
                fail "units not rewritten to /usr/local/bin: $(cat plan)"
        local u
        for u in systemd/ckptd.service systemd/ckptd@.service systemd/user/ckptd.service; do
                grep -q '^ExecStart=/usr/bin/ckptd' "$REPO/$u" || fail "$u does not start /usr/bin/ckptd"
        done
}

# CPPFLAGS (dpkg-buildflags' -D_FORTIFY_SOURCE=2) reaches every compile,
# LDFLAGS every link.
test_cppflags_and_ldflags_are_honoured() {
        make -s -n -B -C "$REPO" SANITIZE= DEPS=no B=build/flagtest all build/flagtest/check_unit \
                CPPFLAGS=-DCKPTD_FLAGTEST LDFLAGS=-Wl,--flagtest >plan || fail "make -n failed"
        local cc ld
        cc=$(grep -c ' -c -o ' plan)
        ld=$(grep -c ' -o build/flagtest/\(ckptd\|check_unit\) ' plan)
        [ "$cc" -gt 10 ] && [ "$ld" = 2 ] || fail "unexpected plan: $(cat plan)"
        [ "$(grep ' -c -o ' plan | grep -c -- '-DCKPTD_FLAGTEST')" = "$cc" ] || fail "CPPFLAGS missing: $(grep ' -c -o ' plan | grep -v CKPTD_FLAGTEST)"
        [ "$(grep ' -o build/flagtest/\(ckptd\|check_unit\) ' plan | grep -c -- '-Wl,--flagtest')" = 2 ] || fail "LDFLAGS missing"
}

# Before compiling, make runs the deps step for what its goals need.
test_make_checks_packages_first() {
        local goal set
        for goal in all:build demo:demo build/check_unit:unit check:test; do
                set=${goal#*:} goal=${goal%%:*}
                make -s -n -B -C "$REPO" SANITIZE= "$goal" >plan || fail "make -n $goal failed"
                [ "$(grep -m1 -n 'scripts/deps.sh --auto' plan | cut -d: -f1)" = 1 ] ||
                        fail "make $goal does not start with the deps step: $(head -n 3 plan)"
                grep -q "scripts/deps.sh --auto $set\$" plan || fail "make $goal: not the $set set: $(head -n 1 plan)"
        done
        make -s -n -B -C "$REPO" SANITIZE= DEPS=no all >plan || fail "make -n DEPS=no failed"
        assert_no_grep 'deps.sh' plan
}

# Not root, packages missing: one line saying what to install and how.
test_deps_not_root_says_what_to_install() {
        need_root
        mkdir bin
        # a dpkg that knows of nothing installed
        printf '#!/bin/sh\nexit 1\n' >bin/dpkg-query
        chmod 755 bin bin/dpkg-query
        chmod 755 "$T"
        local rc=0
        setpriv --reuid=65534 --regid=65534 --clear-groups env PATH="$T/bin:$PATH" \
                bash "$REPO/scripts/deps.sh" --auto test >out 2>err || rc=$?
        [ "$rc" = 1 ] || fail "exit $rc"
        [ ! -s out ] || fail "stdout: $(cat out)"
        [ "$(wc -l <err)" = 1 ] || fail "not one line: $(cat err)"
        assert_grep "make deps" err
        assert_grep "libsystemd-dev" err
        assert_grep "python3-torch" err
        # the demo does not need torch
        rc=0
        setpriv --reuid=65534 --regid=65534 --clear-groups env PATH="$T/bin:$PATH" \
                bash "$REPO/scripts/deps.sh" --auto demo >out 2>err || rc=$?
        [ "$rc" = 1 ] || fail "exit $rc"
        assert_no_grep "torch" err
        assert_grep "libjson-c-dev" err
}

# The conffile a package installs deletes nothing: no watch is live, and
# the service refuses to start until one is added. Its commented example
# and the full example in contrib/examples are valid.
test_shipped_config_is_inert() {
        assert_exit 1 "$CKPTD" -t -c "$REPO/config/ckptd.conf" 2>err
        assert_grep 'no watch defined' err
        sed '/^# watch = (/,$ s/^#//' "$REPO/config/ckptd.conf" >uncommented.conf
        "$CKPTD" -t -c uncommented.conf >out 2>&1 || fail "the commented example is invalid: $(cat out)"
        assert_grep 'watch /data/runs' out
        "$CKPTD" -t -c "$REPO/contrib/examples/ckptd.conf" >out 2>&1 || fail "$(cat out)"
}

# The footer names ckptd and its version, not "BSD".
test_man_footer() {
        command -v mandoc >/dev/null || skip "no mandoc"
        local m
        for m in man/ckptd.8 man/ckptd.conf.5; do
                mandoc -Tascii "$REPO/$m" | tail -n 1 >foot
                assert_grep '^ckptd 0\.1\.0 ' foot
                assert_no_grep 'BSD' foot
        done
}

# The Slurm Prolog drains the node (non-zero) only when ckptd -1 exits 3, a
# floor it cannot meet; the Epilog never does.
test_slurm_prolog_epilog_exit_status() {
        need_root
        mkdir fs
        mount -t tmpfs -o size=4m ckptd-slurm fs || skip "cannot mount tmpfs"
        mkfile fs/epoch=1-val_loss=0.5.ckpt 256
        touch -d "-1 hour" fs/epoch=1-val_loss=0.5.ckpt
        head -c $((3 * 1024 * 1024)) /dev/zero >fs/other-data.bin
        cat >slurm.conf <<EOC
watch = ( { path = "$T/fs"; preset = "lightning"; monitor = "val_loss";
            keep_top_k = 1; keep_last = 1; min_free = "50%"; } );
EOC
        local rc=0
        CKPTD_CONF=$T/slurm.conf bash "$REPO/contrib/slurm/prolog.sh" >out 2>&1 || rc=$?
        [ "$rc" = 3 ] || fail "prolog exited $rc with the floor unmet"
        assert_exit 0 env CKPTD_CONF="$T/slurm.conf" CKPTD_DRAIN=no bash "$REPO/contrib/slurm/prolog.sh"
        assert_exit 0 env CKPTD_CONF="$T/slurm.conf" bash "$REPO/contrib/slurm/epilog.sh"
        # room again: 0
        rm fs/other-data.bin
        assert_exit 0 env CKPTD_CONF="$T/slurm.conf" bash "$REPO/contrib/slurm/prolog.sh"
        assert_exists fs/epoch=1-val_loss=0.5.ckpt
        # a broken config is logged, the node not drained
        echo 'watch = ( { path = "relative"; } );' >bad.conf
        assert_exit 0 env CKPTD_CONF="$T/bad.conf" bash "$REPO/contrib/slurm/prolog.sh"
        umount fs
}

run_tests
