#!/usr/bin/env bash
# make deb: build the Debian package from a copy of the tree (dpkg-buildpackage
# runs `make clean`), then check it: lintian (no error or warning beyond the
# few accepted below, each with its reason), hardening-check on the binary
# (_FORTIFY_SOURCE from CPPFLAGS, PIE, stack protector, RELRO, BIND_NOW), and
# what it installs. The .deb and the logs stay in $DEB_OUT (default
# build/deb). Needs debhelper, dpkg-dev, lintian, devscripts
# (scripts/deps.sh pkg) and the build dependencies.
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${DEB_OUT:-$REPO/build/deb}
for c in dpkg-buildpackage dh lintian hardening-check; do
        command -v "$c" >/dev/null || { echo "deb: $c missing (bash scripts/deps.sh pkg)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ckptd-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/ckptd-0.1.0
mkdir -p "$src" "$OUT"
(cd "$REPO" && git ls-files -z | tar --null -T - -cf -) | tar -C "$src" -xf -

# The unit suite runs in make check; here only when DEB_BUILD_OPTIONS says.
export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS-nocheck}
echo "== DEB_BUILD_OPTIONS=$DEB_BUILD_OPTIONS dpkg-buildpackage -b -us -uc (log: $OUT/build.log)"
(cd "$src" && dpkg-buildpackage -b -us -uc) >"$OUT/build.log" 2>&1 || { tail -n 40 "$OUT/build.log"; exit 1; }
deb=$(ls "$work"/ckptd_*.deb)
cp "$deb" "$OUT/"
deb=$OUT/$(basename "$deb")
echo "   $deb"
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# Accepted lintian tags, each for a reason:
#  initial-upload-closes-no-bugs: not in Debian, no ITP bug to close.
#  maintainer-script-calls-systemctl: instances of ckptd@.service, which
#    dh_installsystemd cannot name, are try-restarted after an upgrade and
#    stopped on removal (debian/ckptd.postinst, debian/ckptd.prerm).
accepted='initial-upload-closes-no-bugs|maintainer-script-calls-systemctl'
echo "== lintian"
lintian --tag-display-limit 0 --display-info "$deb" >"$OUT/lintian.log" 2>&1 || true
sed 's/^/   /' "$OUT/lintian.log"
if grep -E '^[EW]: ' "$OUT/lintian.log" | grep -vE ": ($accepted)( |$)" >/dev/null; then
        bad "lintian errors or warnings"
fi

echo "== hardening-check"
x=$work/x
dpkg-deb -x "$deb" "$x"
hardening-check "$x/usr/bin/ckptd" | sed 's/^/   /' | tee "$OUT/hardening.log"
# Control flow integrity (IBT/SHSTK) needs every object of the link built
# for it, and bookworm's crt files are not: not required.
hardening-check -q --nocfprotection "$x/usr/bin/ckptd" >/dev/null || bad "hardening-check"
grep -q 'Fortify Source functions: yes' "$OUT/hardening.log" || bad "no _FORTIFY_SOURCE"

echo "== contents"
dpkg-deb -c "$deb" | awk '{ print $NF }' | sed 's|^\./|/|' >"$OUT/contents"
for f in /usr/bin/ckptd /lib/systemd/system/ckptd.service /lib/systemd/system/ckptd@.service \
        /usr/lib/systemd/user/ckptd.service /etc/ckptd/ckptd.conf /usr/share/man/man8/ckptd.8.gz \
        /usr/share/man/man5/ckptd.conf.5.gz /usr/share/doc/ckptd/README.md.gz \
        /usr/share/doc/ckptd/examples/ckptd.conf /usr/share/doc/ckptd/examples/k8s/ckptd.yaml \
        /usr/share/doc/ckptd/examples/slurm/prolog.sh /usr/share/doc/ckptd/copyright; do
        grep -qxF "$f" "$OUT/contents" || bad "$f not in the package"
done
grep -q 'sbin' "$OUT/contents" && bad "something in an sbin: $(grep sbin "$OUT/contents")"
dpkg-deb -e "$deb" "$work/ctl"
grep -qx /etc/ckptd/ckptd.conf "$work/ctl/conffiles" || bad "ckptd.conf is not a conffile"
grep -q '^ExecStart=/usr/bin/ckptd$' "$x/lib/systemd/system/ckptd.service" || bad "unit does not start /usr/bin/ckptd"
"$x/usr/bin/ckptd" -t -c "$x/etc/ckptd/ckptd.conf" >/dev/null 2>&1 && bad "the shipped conffile watches something"

if [ "$fails" = 0 ]; then echo "deb: ok"; else echo "deb: $fails failed"; exit 1; fi
