#!/usr/bin/env bash
# Install what ckptd needs to build and test on Debian 12, and only what is
# missing. Run as root (CI is); prints what it installs.
set -eu

# build: compiler, pkg-config and the four libraries
pkgs=(gcc make pkg-config libsystemd-dev libconfig-dev libjson-c-dev check)
# tests: loop ext4 filesystems, namespaces, a real systemd, Debian's torch
pkgs+=(e2fsprogs util-linux procps systemd python3 python3-torch)
# bench: the peer baseline is a python3-watchdog script
pkgs+=(python3-watchdog)
# lint: man pages
pkgs+=(mandoc)
# fuzz: clang, and the libFuzzer runtime behind -fsanitize=fuzzer, which
# clang-14 only recommends (through libclang-common-14-dev)
pkgs+=(clang libclang-rt-14-dev)

missing=()
for p in "${pkgs[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
                missing+=("$p")
        fi
done
if [ ${#missing[@]} -eq 0 ]; then
        echo "deps: all present"
        exit 0
fi
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
        echo "deps: need root to install packages" >&2
        exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
