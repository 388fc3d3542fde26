#!/usr/bin/env bash
# Install the Debian 12 packages ckptd needs, and only those missing.
#
#   scripts/deps.sh [--auto] [SET...]
#
# Sets (each includes "build"):
#   build  compiler and C library headers, make, pkg-config and the three libraries
#   demo   build, plus what make demo uses (mount, a tmpfs)
#   unit   build, plus Check (build/check_unit)
#   test   unit, plus what make check uses: loop ext4, namespaces, a real
#          systemd (with D-Bus and pam_systemd for the user unit, man for
#          systemd-analyze verify), strace, GNU time (peak memory), Debian's
#          python3 with torch, mandoc (man page checks)
#   bench  build, plus python3-watchdog (the peer baseline)
#   lint   mandoc, cppcheck, shellcheck, clang-format
#   fuzz   clang and its libFuzzer runtime
#   pkg    what make deb / make fresh-test use: the Build-Depends,
#          debhelper, dpkg-dev,
#          lintian, devscripts (hardening-check), debootstrap
#   all    every set (the default; CI runs this)
#
# --auto is how the Makefile calls it before building: silent when nothing
# is missing; as root it installs what is; otherwise it prints one line
# saying what to install and fails.
set -eu

auto=
sets=()
for a in "$@"; do
        case $a in
        --auto) auto=1 ;;
        build | demo | unit | test | bench | lint | fuzz | pkg | all) sets+=("$a") ;;
        *)
                echo "usage: scripts/deps.sh [--auto] [build|demo|unit|test|bench|lint|fuzz|pkg|all]..." >&2
                exit 2
                ;;
        esac
done
[ ${#sets[@]} -gt 0 ] || sets=(all)

pkgs=(gcc libc6-dev make pkg-config libsystemd-dev libconfig-dev libjson-c-dev)
add() {
        case $1 in
        demo) pkgs+=(util-linux mount coreutils mawk) ;;
        unit) pkgs+=(check) ;;
        # clang-14 only recommends the libFuzzer runtime (libclang-rt-14-dev)
        test)
                add unit
                pkgs+=(e2fsprogs util-linux mount procps systemd python3 python3-torch strace passwd mandoc time)
                # tests/systemd: `systemctl start user@UID` needs the system bus
                # and pam_systemd; systemd-analyze verify runs man for each
                # Documentation= page
                pkgs+=(dbus libpam-systemd man-db)
                ;;
        bench) pkgs+=(python3-watchdog) ;;
        lint) pkgs+=(mandoc cppcheck shellcheck clang-format) ;;
        fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
        pkg) pkgs+=(debhelper dpkg-dev lintian devscripts debootstrap bash-completion check systemd) ;;
        all) for s in demo test bench lint fuzz pkg; do add $s; done ;;
        esac
}
for s in "${sets[@]}"; do add "$s"; done

if ! command -v dpkg-query >/dev/null; then
        # Not Debian: say what is needed and let the build find out.
        [ -n "$auto" ] && exit 0
        echo "deps: not a Debian system; install the equivalents of: ${pkgs[*]}" >&2
        exit 1
fi

mapfile -t unique < <(printf '%s\n' "${pkgs[@]}" | sort -u)
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${unique[@]}" 2>/dev/null |
        awk '$NF == "installed" { print $1 }')
missing=()
for p in "${unique[@]}"; do
        grep -qxF "$p" <<<"$installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
        [ -n "$auto" ] || echo "deps: all present"
        exit 0
fi
if [ "$(id -u)" != 0 ]; then
        echo "ckptd: missing packages: ${missing[*]}; run 'sudo make deps' (or: sudo apt-get install ${missing[*]})" >&2
        exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed ${missing[*]}"
