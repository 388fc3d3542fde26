#!/usr/bin/env bash
# Names that would act on a terminal: runs, checkpoints and fields whose
# names hold ESC sequences (CSI, an OSC title), BEL, a newline that would
# forge a line, a byte that is not UTF-8, a UTF-8 C1 control (U+009B, CSI on
# 8-bit terminals) and a bidi override (U+202E). Wherever ckptd prints them
# (-l, -l --json, -1's stderr, STATUS=, the metrics file) they come out as
# visible escapes: no control byte, no C1, no bidi control, no invalid UTF-8.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

RUNS=($'r_csi\e[2J' $'r_osc\e]0;pwned\a' $'r_ff\xff' $'r_nl\nrun forged (9 checkpoints)' $'r_c1\xc2\x9b31m'
        $'r_rlo\xe2\x80\xaegpj.exe')
# checkpoint names: plain, a field name with CSI, OSC+BEL in the first token
CKPTS=("epoch=1-step=10.ckpt" "epoch=2-step=20-x"$'\e[31m'"=1.ckpt" $'\e]0;t\a'"epoch=3-step=30.ckpt")

# make_tree DIR: every run with every checkpoint, an hour old.
make_tree() {
        local r c
        for r in "${RUNS[@]}"; do
                mkdir -p "$1/$r"
                for c in "${CKPTS[@]}"; do printf x >"$1/$r/$c"; done
        done
        find "$1" -mindepth 1 -exec touch -h -d "-1 hour" {} +
}

# clean.py FILE [text|json]: FILE holds valid UTF-8 with no C0 control but
# newline (json: and no raw control at all, since newlines are only layout),
# no DEL, no C1 and no bidi control or line separator.
write_checker() {
        cat >clean.py <<'EOP'
import sys
data = open(sys.argv[1], "rb").read()
try:
    text = data.decode("utf-8")
except UnicodeDecodeError as e:
    sys.exit(f"invalid UTF-8 at {e.start}: {data[max(0, e.start - 20):e.start + 5]!r}")
bad = set(range(0x00, 0x20)) - {0x0a} | set(range(0x7f, 0xa0)) | {0x061c, 0x200e, 0x200f, 0x2028, 0x2029} \
    | set(range(0x202a, 0x202f)) | set(range(0x2066, 0x206a))
for i, ch in enumerate(text):
    if ord(ch) in bad:
        sys.exit(f"raw U+{ord(ch):04X} at {i}: {text[max(0, i - 30):i + 10]!r}")
EOP
}

assert_clean() { $PY clean.py "$1" || fail "$1 is not safe to print: $($PY clean.py "$1" 2>&1)"; }

test_list_table_escapes_names() {
        make_tree "$T/root"
        write_checker
        "$CKPTD" -l -w "$T/root" --preset lightning --keep-last 1 >out 2>err || fail "-l failed: $(cat err)"
        assert_clean out
        assert_clean err
        # one "run" line per run: the newline did not forge one
        [ "$(grep -c '^run ' out)" = "${#RUNS[@]}" ] || fail "run lines: $(grep '^run ' out)"
        assert_no_grep '^run forged' out
        # what was escaped is still there, visibly
        assert_grep 'r_csi\\x1b\[2J' out
        assert_grep 'r_osc\\x1b\]0;pwned\\x07' out
        assert_grep 'r_ff\\xff' out
        assert_grep 'r_nl\\nrun forged' out
        assert_grep 'r_c1\\u009b31m' out
        assert_grep 'r_rlo\\u202egpj.exe' out
        assert_grep 'x\\x1b\[31m=1 ' out
        assert_grep '\\x1b\]0;t\\x07epoch=3-step=30.ckpt' out
}

# Columns are padded by what a terminal shows, not by bytes: after a name
# with an é (two bytes, one column) or CJK characters (three bytes, two
# columns each) the reasons stay in line.
test_list_table_columns_by_width() {
        mkdir -p root/r
        touch -d "-1 hour" root/r/ckpt_1.pt root/r/cképt_2.pt root/r/漢字_3.pt
        "$CKPTD" -l -w "$T/root" --pattern '*_{step}.pt' --keep-last 3 >out 2>err || fail "-l failed: $(cat err)"
        assert_grep '^  keep         0B  step=1  ckpt_1.pt   last$' out
        assert_grep '^  keep         0B  step=2  cképt_2.pt  last$' out
        assert_grep '^  keep         0B  step=3  漢字_3.pt   last$' out
}

test_list_json_is_valid_and_safe() {
        make_tree "$T/root"
        write_checker
        "$CKPTD" -l --json -w "$T/root" --preset lightning --keep-last 1 >out.json 2>err ||
                fail "-l --json failed: $(cat err)"
        assert_clean out.json
        assert_clean err
        # valid JSON; names decode to the exact names where they are UTF-8,
        # bytes that are not UTF-8 to U+FFFD
        $PY - "$T/out.json" <<'EOP' || fail "JSON: $(head -c 2000 out.json)"
import json, sys
doc = json.load(open(sys.argv[1], "rb"))
runs = {r["path"]: r for w in doc["watches"] for r in w["runs"] if r["path"] != "."}
want = {"r_csi\x1b[2J", "r_osc\x1b]0;pwned\x07", "r_ff\ufffd", "r_nl\nrun forged (9 checkpoints)", "r_c1\x9b31m",
        "r_rlo\u202egpj.exe"}
assert set(runs) == want, sorted(runs)
for r in runs.values():
    names = {c["name"] for c in r["checkpoints"]}
    assert names == {"epoch=1-step=10.ckpt", "epoch=2-step=20-x\x1b[31m=1.ckpt", "\x1b]0;t\x07epoch=3-step=30.ckpt"}, names
    fields = set().union(*(c["fields"].keys() for c in r["checkpoints"]))
    assert "x\x1b[31m" in fields and "\x1b]0;t\x07epoch" in fields, fields
EOP
}

test_oneshot_stderr_escapes_names() {
        make_tree "$T/root"
        write_checker
        "$CKPTD" -1 -n --log-level debug -w "$T/root" --preset lightning --keep-last 1 2>err ||
                fail "-1 failed: $(cat err)"
        assert_clean err
        assert_grep 'r_rlo\\u202egpj.exe' err
        assert_grep 'r_c1\\u009b31m' err
        assert_no_grep '^run forged' err
        # escaped once, as -l prints it: a name is found by what -l shows
        assert_grep "^ckptd: run $T/root/r_csi"'\\x1b\[2J: would delete 2 checkpoints' err
        assert_no_grep '\\\\' err
        # and in the warnings that name a run
        "$CKPTD" -1 -n -w "$T/root" --preset lightning --monitor val_loss --keep-top-k 1 2>err3 ||
                fail "-1 failed: $(cat err3)"
        assert_clean err3
        assert_grep "$T/root/r_csi"'\\x1b\[2J: no checkpoint carries the monitor val_loss' err3
        assert_no_grep '\\\\' err3
        "$CKPTD" -1 -w "$T/root" --preset lightning --keep-last 1 2>err2 || fail "-1 failed: $(cat err2)"
        assert_clean err2
        local r
        for r in "${RUNS[@]}"; do assert_names "$T/root/$r" "${CKPTS[2]}"; done
}

test_config_check_escapes_paths() {
        local root=$T/$'root\e]0;x\a\xc2\x9b\xe2\x80\xae\xff\nwatch forged'
        mkdir -p "$root"
        write_checker
        "$CKPTD" -t -w "$root" --preset lightning --keep-last 1 >out 2>err || fail "-t failed: $(cat err)"
        assert_clean out
        assert_clean err
        assert_grep 'root\\x1b\]0;x\\x07\\u009b\\u202e\\xff\\nwatch forged' out
        [ "$(grep -c '^watch ' out)" = 1 ] || fail "watch lines: $(cat out)"
}

# A bad value of a config file is quoted in its error as an escaped name:
# at start-up, by -t and -1, and as one JSON object with --log-format json.
test_config_errors_escape_values() {
        mkdir runs
        write_checker
        printf 'watch = ( { path = "%s"; preset = "lightning"; min_free = "1\\nrun forged\\x1b[2J\\xc2\\x9b"; } );\n' \
                "$T/runs" >e.conf
        local mode
        for mode in -t -1 ""; do
                # shellcheck disable=SC2086 # no mode: the daemon
                assert_exit 1 "$CKPTD" $mode -c e.conf 2>err
                assert_clean err
                assert_grep '^e.conf:1: min_free: invalid size "1\\nrun forged\\x1b\[2J\\u009b"' err
                [ "$(wc -l <err)" = 1 ] || fail "$mode: more than one line: $(cat err)"
        done
        assert_exit 1 "$CKPTD" -1 -c e.conf --log-format json --log-target stderr 2>err
        assert_clean err
        $PY -c 'import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    assert "1\\nrun forged" in o["MESSAGE"], o' err || fail "not one JSON object a line: $(cat err)"
}

# A bad value on the command line is quoted in its error escaped too: each
# kind of flag value, and an unexpected argument.
test_flag_errors_escape_values() {
        local bad=$'1\nrun forged\e[2J\xc2\x9b\xff' flag
        mkdir runs
        write_checker
        for flag in --keep-top-k --min-age --headroom --min-free --mode --log-format --log-target --log-level; do
                assert_exit 2 "$CKPTD" -1 -w runs --keep-last 1 "$flag" "$bad" 2>err
                assert_clean err
                assert_grep "^ckptd: .*'1\\\\nrun forged\\\\x1b\\[2J\\\\u009b\\\\xff'" err
                [ "$(grep -c '^ckptd: ' err)" = 1 ] || fail "$flag: more than one line: $(cat err)"
        done
        assert_exit 2 "$CKPTD" -1 -w runs --keep-last 1 "$bad" 2>err
        assert_clean err
        assert_grep "^ckptd: unexpected argument '1\\\\nrun forged" err
        # quoted inside a message of the watch's: its preset, monitor, pattern
        assert_exit 2 "$CKPTD" -1 -w runs --keep-last 1 --preset "$bad" 2>err
        assert_clean err
        assert_grep 'unknown preset "1\\nrun forged\\x1b\[2J\\u009b\\xff"' err
        assert_exit 2 "$CKPTD" -1 -w runs --keep-last 1 --pattern 's{step}' --monitor "$bad" 2>err
        assert_clean err
        assert_grep 'monitor "1\\nrun forged\\x1b\[2J\\u009b\\xff"' err
        assert_exit 2 "$CKPTD" -1 -w runs --keep-last 1 --pattern "s{step$bad" 2>err
        assert_clean err
        assert_grep 'pattern "s{step1\\nrun forged\\x1b\[2J\\u009b\\xff"' err
        # what getopt refuses: an unknown option, a value for a flag that
        # takes none, an unknown short option
        local arg
        for arg in "--keep-top-kk=$bad" "--keep$bad" "--json=$bad" $'-\xff'; do
                assert_exit 2 "$CKPTD" -1 -w runs --keep-last 1 "$arg" 2>err
                assert_clean err
                [ "$(grep -c '^ckptd: ' err)" -ge 1 ] || fail "$arg: no message: $(cat err)"
        done
        assert_grep "^ckptd: invalid option -- '\\\\xff'" err
        assert_exit 2 "$CKPTD" status "$bad" 2>err
        assert_clean err
        assert_grep "unexpected argument '1\\\\nrun forged" err
        assert_exit 2 "$CKPTD" reload "$bad" 2>err
        assert_clean err
        assert_grep "invalid pid '1\\\\nrun forged" err
        # the runtime directory reload looks in, from the environment
        mkdir "rt$bad"
        assert_exit 1 env RUNTIME_DIRECTORY="$T/rt$bad" "$CKPTD" reload 2>err
        assert_clean err
        assert_grep 'no running ckptd in .*/rt1\\nrun forged' err
        assert_exit 1 env RUNTIME_DIRECTORY="$T/rt$bad" "$CKPTD" reload 1 2>err
        assert_clean err
        assert_grep 'no state of pid 1 in .*/rt1\\nrun forged' err
}

# STATUS= and the metrics file, from the daemon, with the root itself named
# badly so that it reaches STATUS= (floor line) and the metrics labels.
test_status_and_metrics_escape_names() {
        local root=$T/$'root\e]0;x\a\xc2\x9b\xe2\x80\xae\xff'
        make_tree "$root"
        write_checker
        cat >c.conf <<EOC
log_level = "debug";
metrics_file = "$T/m.prom";
watch = ( { path = "$root"; preset = "lightning"; keep_last = 1; settle = 0.5; min_free = "1K"; } );
EOC
        notify_listen
        NOTIFY_SOCKET=$T/notify.sock "$CKPTD" -c "$T/c.conf" 2>d.log &
        DPID=$!
        echo "$DPID" >>"$T/pids"
        wait_for 20 env LC_ALL=C grep -aq 'STATUS=.*floor' notify || fail "no STATUS= with the floor: $(cat notify d.log)"
        wait_for 20 test -s m.prom || fail "no metrics file"
        # the deletions happened (the names are ordinary to everything but a terminal)
        local r
        for r in "${RUNS[@]}"; do wait_for 20 test ! -e "$root/$r/${CKPTS[0]}" || fail "$r not swept"; done
        kill -TERM "$DPID"
        wait_for 20 eval "! kill -0 $DPID 2>/dev/null" || fail "ckptd did not stop"
        assert_clean notify
        assert_clean m.prom
        assert_clean d.log
        assert_grep 'STATUS=.*root\\x1b\]0;x\\x07\\u009b\\u202e\\xff' notify
        assert_grep 'run="r_rlo\\\\u202egpj.exe"' m.prom
        [ "$(grep -c '^ckptd_checkpoints{' m.prom)" = "$((${#RUNS[@]} + 1))" ] || fail "metrics lines: $(cat m.prom)"
}

run_tests
