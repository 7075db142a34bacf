#!/usr/bin/env bash
# WebSocket conformance: runs Autobahn|Testsuite's fuzzing client against
# examples/ws_echo.rs (our own WebSocket decoder and upgrade) and summarises
# the report per case group. Exits non-zero if any case FAILED.
#
# Installs wstest idempotently into target/autobahn-venv (it needs Python
# 2.7: $PYTHON2, else pyenv's 2.7.18, else python2.7 on the PATH), builds
# and starts ws_echo on a free port, runs cases 1-7 and 10 (12 and 13 are
# compression, which we do not offer; 9 is performance, left out), stops the
# server and writes the report to target/autobahn-report (index.html there).
# See docs/AUTOBAHN.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

venv=target/autobahn-venv
report=$root/target/autobahn-report
suite_version=25.10.1

# --- wstest ---------------------------------------------------------------
installed=$("$venv/bin/wstest" -a 2>/dev/null || true)
if ! grep -q "AutobahnTestSuite $suite_version" <<<"$installed"; then
    py2=${PYTHON2:-}
    if [ -z "$py2" ]; then
        for p in /root/.pyenv/versions/2.7.18/bin/python "$(command -v python2.7 || true)"; do
            if [ -n "$p" ] && [ -x "$p" ]; then
                py2=$p
                break
            fi
        done
    fi
    if [ -z "$py2" ]; then
        echo "autobahn: Python 2.7 not found; set PYTHON2 to a python2.7 binary" >&2
        exit 2
    fi
    if ! "$py2" -m virtualenv --version >/dev/null 2>&1; then
        echo "autobahn: installing virtualenv for $py2"
        # The last virtualenv that runs on, and makes, 2.7 environments.
        "$py2" -m pip install --quiet --disable-pip-version-check 'virtualenv==20.15.1' </dev/null
    fi
    echo "autobahn: creating $venv with autobahntestsuite $suite_version"
    rm -rf "$venv"
    "$py2" -m virtualenv --quiet "$venv"
    constraints=$(mktemp)
    # autobahntestsuite pins its direct dependencies; these pin the rest to
    # the last releases that install on 2.7 (the set this was run with).
    cat >"$constraints" <<'EOF'
attrs==21.4.0
autobahn==0.10.9
Automat==22.10.0
cffi==1.15.1
constantly==15.1.0
cryptography==3.3.2
enum34==1.1.10
hyperlink==21.0.0
idna==2.10
incremental==16.10.1
ipaddress==1.0.23
Jinja2==2.11.3
klein==17.10.0
linecache2==1.0.0
MarkupSafe==1.1.1
pyasn1==0.5.1
pyasn1-modules==0.3.0
pycparser==2.21
PyHamcrest==1.10.1
pyOpenSSL==19.1.0
service-identity==18.1.0
six==1.16.0
traceback2==1.4.0
Twisted==19.10.0
txaio==2.1.0
typing==3.10.0.0
ujson==2.0.3
unittest2==1.1.0
Werkzeug==1.0.1
wsaccel==0.6.6
zope.interface==4.6.0
EOF
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-python-version-warning \
        -c "$constraints" "autobahntestsuite==$suite_version" </dev/null
    rm -f "$constraints"
fi
"$venv/bin/wstest" -a 2>/dev/null | sed -n 's/^/autobahn: /p'

# --- the echo server ------------------------------------------------------
cargo build --quiet --example ws_echo
echo_bin=${CARGO_TARGET_DIR:-$root/target}/debug/examples/ws_echo

work=$(mktemp -d)
echo_pid=""
stop_echo() {
    if [ -n "$echo_pid" ]; then
        kill "$echo_pid" 2>/dev/null || true
        wait "$echo_pid" 2>/dev/null || true
        echo_pid=""
    fi
}
trap 'stop_echo; rm -rf "$work"' EXIT

"$echo_bin" --port 0 >"$work/echo.out" 2>"$work/echo.err" &
echo_pid=$!
url=""
for _ in $(seq 100); do
    url=$(head -n 1 "$work/echo.out")
    if [ -n "$url" ]; then break; fi
    if ! kill -0 "$echo_pid" 2>/dev/null; then
        echo "autobahn: ws_echo exited:" >&2
        cat "$work/echo.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$url" ]; then
    echo "autobahn: ws_echo printed no URL" >&2
    exit 1
fi
echo "autobahn: ws_echo (pid $echo_pid) on $url"

# --- the run --------------------------------------------------------------
rm -rf "$report"
mkdir -p "$report"
cat >"$work/spec.json" <<EOF
{
    "outdir": "$report",
    "servers": [{"agent": "chatroom-ws_echo", "url": "$url"}],
    "cases": ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"],
    "exclude-cases": ["9.*", "12.*", "13.*"],
    "exclude-agent-cases": {}
}
EOF
echo "autobahn: running the fuzzing client (log: $report/wstest.log)"
if ! (cd "$work" && timeout 1800 "$root/$venv/bin/wstest" -m fuzzingclient -s spec.json) \
    >"$report/wstest.log" 2>&1; then
    echo "autobahn: wstest failed:" >&2
    tail -n 30 "$report/wstest.log" >&2
    exit 1
fi
stop_echo
if [ -s "$work/echo.err" ]; then
    cp "$work/echo.err" "$report/ws_echo.err"
fi

# --- the summary ----------------------------------------------------------
"$venv/bin/python" - "$report/index.json" <<'EOF'
import json, sys

with open(sys.argv[1]) as f:
    index = json.load(f)
kinds = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]

def key(case_id):
    return [int(part) for part in case_id.split(".")]

failed = 0
for agent, cases in sorted(index.items()):
    groups = {}
    notes = []
    for case_id in sorted(cases, key=key):
        result = cases[case_id]
        behavior = result["behavior"]
        counts = groups.setdefault(case_id.split(".")[0], dict((k, 0) for k in kinds + ["other"]))
        counts[behavior if behavior in kinds else "other"] += 1
        if behavior == "FAILED" or behavior not in kinds:
            failed += 1
        if behavior != "OK" or result["behaviorClose"] != "OK":
            notes.append("  %-8s %-13s close %-13s remote code %s" % (
                case_id, behavior, result["behaviorClose"], result.get("remoteCloseCode")))
    print("Autobahn|Testsuite fuzzingclient against %s" % agent)
    header = ["group"] + kinds + ["total"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["--:"] * (len(header) - 1)) + "|")
    total = dict((k, 0) for k in kinds + ["other"])
    for group in sorted(groups, key=int):
        counts = groups[group]
        for k in counts:
            total[k] += counts[k]
        row = [group] + [str(counts[k]) for k in kinds] + [str(sum(counts.values()))]
        print("| " + " | ".join(row) + " |")
    row = ["all"] + [str(total[k]) for k in kinds] + [str(sum(total.values()))]
    print("| " + " | ".join(row) + " |")
    if total["other"]:
        print("%d case(s) with another behavior (counted as failed)" % total["other"])
    if notes:
        print("Not plain OK:")
        print("\n".join(notes))
print("report: %s" % sys.argv[1].replace("index.json", "index.html"))
sys.exit(1 if failed else 0)
EOF
