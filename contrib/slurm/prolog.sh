#!/bin/sh
# Slurm Prolog for ckptd: before a job starts on a node, apply the node's
# retention policy once, so the job finds its free-space floor met. In
# slurm.conf:  Prolog=/etc/slurm/prolog.d/*   (copy this file there, mode 755)
#
# /etc/ckptd/slurm.conf holds the watches of the node-local checkpoint
# directories (ckptd.conf(5)); no ckptd daemon may watch the same trees, or
# ckptd -1 waits for it (see "One daemon per tree" in ckptd(8)).
#
# ckptd -1 exits 3 when a floor is still unmet after every checkpoint the
# policy allows was evicted: the job would fail with ENOSPC at its next save.
# A non-zero Prolog drains the node (reason "Prolog error") and requeues the
# job (held, unless SchedulerParameters=nohold_on_prolog_fail), which is what
# this does then, after saying why. Set CKPTD_DRAIN=no to
# only log it. Other failures (1: a configuration or deletion error, 2: a
# usage error) are logged and do not drain the node.
CONF=${CKPTD_CONF:-/etc/ckptd/slurm.conf}
CKPTD=${CKPTD:-/usr/bin/ckptd}
[ -r "$CONF" ] || exit 0

rc=0
out=$("$CKPTD" -1 -c "$CONF" 2>&1) || rc=$?
[ -z "$out" ] || printf '%s\n' "$out" | logger -t ckptd-prolog
case $rc in
0) exit 0 ;;
3)
        logger -t ckptd-prolog -p user.err "free-space floor unmet on $(hostname) before job ${SLURM_JOB_ID:-?}"
        [ "${CKPTD_DRAIN:-yes}" = no ] && exit 0
        exit 3
        ;;
*)
        logger -t ckptd-prolog -p user.warning "ckptd -1 -c $CONF exited $rc before job ${SLURM_JOB_ID:-?}"
        exit 0
        ;;
esac
