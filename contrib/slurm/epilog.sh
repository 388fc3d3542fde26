#!/bin/sh
# Slurm Epilog for ckptd: once a job has ended, its checkpoints are all
# complete; apply the node's retention policy to them at once instead of
# leaving them to the next job's Prolog. In slurm.conf:
#   Epilog=/etc/slurm/epilog.d/*   (copy this file there, mode 755)
#
# Nothing here drains the node: a floor still unmet (ckptd -1 exits 3) is
# logged, and the next Prolog (contrib/slurm/prolog.sh) decides on it.
CONF=${CKPTD_CONF:-/etc/ckptd/slurm.conf}
CKPTD=${CKPTD:-/usr/bin/ckptd}
[ -r "$CONF" ] || exit 0

rc=0
out=$("$CKPTD" -1 -c "$CONF" 2>&1) || rc=$?
[ -z "$out" ] || printf '%s\n' "$out" | logger -t ckptd-epilog
case $rc in
0) ;;
3) logger -t ckptd-epilog -p user.warning "free-space floor unmet on $(hostname) after job ${SLURM_JOB_ID:-?}" ;;
*) logger -t ckptd-epilog -p user.warning "ckptd -1 -c $CONF exited $rc after job ${SLURM_JOB_ID:-?}" ;;
esac
exit 0
