#!/usr/bin/env bash
# What one owner, one daemon or one clock must not do to another: checkpoints
# of several owners in one sticky run, two ckptd processes on one tree, and
# wall-clock steps under a running daemon.
. "$(dirname "$0")/../lib.sh"

VICTIM=ckptd-victim
ATTACKER=ckptd-attacker

# need_users: the two unprivileged users of the owner tests.
need_users() {
        need_root
        local u
        for u in $VICTIM $ATTACKER; do
                id -u "$u" >/dev/null 2>&1 || useradd --system --no-create-home "$u" 2>/dev/null ||
                        id -u "$u" >/dev/null 2>&1 || skip "cannot create user $u"
        done
        chmod 755 "$T"
}

# as USER CMD...: run CMD as USER.
as() {
        local u=$1
        shift
        setpriv --reuid="$u" --regid="$u" --clear-groups -- "$@"
}

# sticky_run DIR: a world-writable sticky directory (/tmp's mode).
sticky_run() {
        mkdir -p "$1"
        chmod 1777 "$1"
}

# --- sticky and shared runs: each owner's checkpoints are a run of their own ---

test_sticky_run_keeps_each_owners_newest() {
        need_users
        sticky_run run
        as $VICTIM mkdir run/checkpoint-100 run/checkpoint-200
        as $VICTIM sh -c 'echo w >run/checkpoint-100/model.bin; echo w >run/checkpoint-200/model.bin'
        as $ATTACKER mkdir run/checkpoint-999999
        as $ATTACKER touch -d "-2 hours" run/checkpoint-999999
        touch -d "-1 hour" run/checkpoint-100 run/checkpoint-200 run/*/model.bin
        "$CKPTD" -1 --pattern 'checkpoint-{step}' --keep-last 1 -w "$T/run" 2>o.log || fail "-1: $(cat o.log)"
        # the victim's run keeps its newest; the attacker's file decided
        # nothing about the victim's
        assert_names run checkpoint-200 checkpoint-999999
}

test_sticky_run_plain_files_and_list() {
        need_users
        sticky_run run
        as $VICTIM sh -c 'echo a >run/step_100.pt; echo b >run/step_200.pt'
        as $ATTACKER sh -c 'echo x >run/step_999999.pt'
        touch -d "-1 hour" run/*.pt
        "$CKPTD" -l --pattern 'step_{step}.pt' --keep-last 1 -w "$T/run" >l.out 2>&1 || fail "-l: $(cat l.out)"
        grep 'step_200.pt' l.out | grep -q keep || fail "-l would delete the victim's newest: $(cat l.out)"
        "$CKPTD" -1 --pattern 'step_{step}.pt' --keep-last 1 -w "$T/run" 2>o.log || fail "-1: $(cat o.log)"
        assert_names run step_200.pt step_999999.pt
}

test_sticky_run_group_of_two_owners_is_kept() {
        need_users
        sticky_run run
        as $VICTIM sh -c 'echo i >run/ckpt-7.index; echo d >run/ckpt-7.data-00000-of-00001'
        # a member the attacker slipped into the victim's group, sorted first
        as $ATTACKER sh -c 'echo x >run/ckpt-7.aaa; echo i >run/ckpt-999.index'
        touch -d "-1 hour" run/*
        "$CKPTD" -1 --pattern 'ckpt-{step}.*' --keep-last 1 -w "$T/run" 2>o.log || fail "-1: $(cat o.log)"
        assert_names run ckpt-7.aaa ckpt-7.data-00000-of-00001 ckpt-7.index ckpt-999.index
}

test_sticky_run_floor_protects_each_owners_newest() {
        need_users
        mkdir fs
        mount -t tmpfs -o size=8m tmpfs fs || fail "cannot mount a tmpfs"
        sticky_run fs/run
        as $VICTIM sh -c 'head -c 1048576 /dev/urandom >fs/run/step_100.pt; head -c 1048576 /dev/urandom >fs/run/step_200.pt'
        as $ATTACKER sh -c 'head -c 1048576 /dev/urandom >fs/run/step_999999.pt'
        touch -d "-1 hour" fs/run/*.pt
        # a floor no eviction can reach: everything unprotected goes
        assert_exit 3 "$CKPTD" -1 --pattern 'step_{step}.pt' --keep-last 2 --min-free 100% -w "$T/fs/run"
        assert_names fs/run step_200.pt step_999999.pt
}

run_tests
