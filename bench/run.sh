#!/usr/bin/env bash
# bench/run.sh - consent-relay next to stock Postfix, same load, one run (loopback only).
#
# Steps (default: all three, in this order):
#   sink     smtp-source -> smtp-sink directly: what the load generator and the sink
#            can do on this machine (the ceiling for everything below)
#   postfix  smtp-source -> throwaway stock Postfix (127.0.0.1:$RELAY_PORT) -> smtp-sink,
#            a) default recipient grouping (1 upstream transaction per message),
#            b) smtp_destination_recipient_limit = 1 (1 upstream transaction per recipient)
#   relay    smtp-source -> consent-relay (127.0.0.1:$RELAY_UNDER_TEST_PORT) -> smtp-sink:
#            `cargo build --release`, a fresh SQLite store under $STATE; the RSS cost of
#            $IDLE_CONNS idle connections, then accept and end-to-end rates, CPU, RSS peak
#
#   relay_pg        the relay load with the store on PostgreSQL (PG_BENCH_URL, schema PG_SCHEMA)
#   relay_pg2       two relay nodes on one PostgreSQL schema, the load split between them
#   consent_scale   accept rate on an empty store vs one with SCALE_SUBJECTS people (SQLite, PostgreSQL)
#   feedback        report intake: N_FEEDBACK copies sent through the relay (with [bounces]),
#                   then one ~3 KB DSN (bench/feedback.py) per copy to its SMTP door from
#                   FEEDBACK_SESS connections: reports/s, and every report processed once
#   overview        the console's overview at scale: a SQLite store seeded with OV_DECISIONS
#                   decision rows and OV_PEOPLE people (bench/seed_overview.py, plain SQL),
#                   Store::overview timed in-process (bench/overview.rs), then GET /admin timed
#                   (and /admin?days=90) over HTTP against `serve` on that store, signed in
#                   with an operator token
#
# Usage:  bench/run.sh [sink] [postfix] [relay] [relay_base] [relay_pg] [relay_pg2] [consent_scale] [feedback] [overview]
# Output: one line per figure:  FIGURE<TAB>name<TAB>value<TAB>unit<TAB>conditions
#         then a markdown summary table (stdout); progress and problems on stderr ("# ...").
# Needs : root (Postfix's master and smtp-sink -u), postfix (smtp-source, smtp-sink; installed
#         with apt-get when missing), python3, coreutils; cargo for the relay step.
# Safety: loopback only; every command is bounded by `timeout`; daemons it starts are tracked
#         by PID / config dir under $STATE and stopped on exit, and leftovers of an
#         interrupted run are stopped at start -> idempotent. Ports in use by anything else
#         make the step fail instead of measuring the wrong server.
#
# Tunables (env):
#   N_SINK=20000         messages per smtp-source -> smtp-sink run
#   N_RELAY=10000        messages for the Postfix grouped run and the consent-relay run
#   N_RELAY_PERRCPT=2000 messages for the Postfix per-recipient run (x RELAY_RCPT deliveries)
#   RELAY_SESS=20 RELAY_RCPT=10 RELAY_LEN=1024    smtp-source sessions, recipients/msg, bytes
#   RELAY_CONNECTIONS=16 consent-relay [upstream] connections
#   IDLE_CONNS=1000 IDLE_HOLD=3                    idle-connection RSS test (0 = skip)
#   SINK_PORT=2600 RELAY_PORT=2525 RELAY_UNDER_TEST_PORT=2527
#   STATE=/tmp/consent-relay-bench   RUN_TIMEOUT=300 (seconds per measured command)
#   RELAY_BIN=path       use this consent-relay binary instead of building target/release
#   RELAY_BASE_BIN=path  step relay_base: another build under the same load (what a change costs)
#   BUILD_TIMEOUT=1800   bound on `cargo build --release`
#   RELAY_STORE_URL=url  the relay's [store] url (default: a fresh SQLite file under $STATE)
#   BASE_BOUNCES=1       the same for step relay_base (off by default: older builds refuse [bounces])
#   BOUNCES=1            the relay's config gets [bounces] domain = "bounces.bench.test": every
#                        copy goes with a return path of its own (b-TOKEN@bounces.bench.test)
#   PG_BENCH_URL=postgres://root@127.0.0.1:5432/test  PG_SCHEMA=cr_bench (dropped and
#                        re-created by each PostgreSQL step)
#   SCALE_SUBJECTS=1000000  people seeded (each with a grant) by consent_scale
#   SCALE_SMALL=10000    consent_scale's first seeding, where the lookup is timed first
#   LOOKUP_RCPT=1000 LOOKUP_REPEAT=21  the consent lookup alone: recipients per
#                        statement, statements timed (median reported)
#   SCALE_KINDS="sqlite pg"  the stores consent_scale measures
#   SETTLE=2             seconds to wait after the last expected delivery before the
#                        exactly-once recount (a duplicate arriving late shows up)
#   N_FEEDBACK=10000 FEEDBACK_SESS=20   reports and concurrent sessions of the feedback step
#   RELAY_EXTRA=toml     appended to the generated relay.toml (the feedback step sets [bounces])
#   OV_PEOPLE=1000000 OV_DECISIONS=10000000 OV_RCPT=10 OV_DAYS=365   the overview step's store
#   OV_READS=50 OV_REQUESTS=100   Store::overview reads and GET /admin requests timed
#   OV_HTTP_PORT=8089    the console's port during the HTTP loop;  OV_SEED_TIMEOUT=3600
#   OV_PROFILE=bench     cargo profile of the in-process read (dev: a quick smoke test, not a figure)
set -u
export LC_ALL=C
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH:$HOME/.cargo/bin

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 1
N_SINK=${N_SINK:-20000}
N_RELAY=${N_RELAY:-10000}
N_RELAY_PERRCPT=${N_RELAY_PERRCPT:-2000}
RELAY_SESS=${RELAY_SESS:-20}
RELAY_RCPT=${RELAY_RCPT:-10}
RELAY_LEN=${RELAY_LEN:-1024}
RELAY_CONNECTIONS=${RELAY_CONNECTIONS:-16}
IDLE_CONNS=${IDLE_CONNS:-1000}
IDLE_HOLD=${IDLE_HOLD:-3}
SINK_PORT=${SINK_PORT:-2600}
RELAY_PORT=${RELAY_PORT:-2525}
RELAY_UNDER_TEST_PORT=${RELAY_UNDER_TEST_PORT:-2527}
STATE=${STATE:-/tmp/consent-relay-bench}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-1800}
SETTLE=${SETTLE:-2}
BOUNCES=${BOUNCES:-0}
PFX=$STATE/postfix            # throwaway postfix instance (config + queue + data)
FIGS=$STATE/figures.tsv       # this run's FIGURE lines, for the summary
FROM=sender@example.com
TO=rcpt@example.net

mkdir -p "$STATE"
log() { echo "# $*" >&2; }
fig() { printf 'FIGURE\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" | tee -a "$FIGS"; }
now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN{d=b-a; if(d<=0)d=1e-9; printf "%.0f", n/d}'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }

# Long commands run in the background and are waited for, so that Ctrl-C or SIGTERM
# reaches the trap at once (bash runs traps only between foreground commands) and
# cleanup can stop them.
bounded() { # seconds command... -> exit status of the command (124 on timeout)
  local t=$1; shift
  timeout "$t" "$@" &
  BOUNDED_PID=$!
  wait "$BOUNDED_PID"
  local rc=$?
  BOUNDED_PID=
  return "$rc"
}
port_open() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
wait_port() { # port [tries of 0.1 s]
  local i
  for ((i = 0; i < ${2:-100}; i++)); do
    port_open "$1" && return 0
    sleep 0.1
  done
  return 1
}
need_free_port() { # port what -> fails if something we did not start listens there
  if port_open "$1"; then
    log "127.0.0.1:$1 ($2) is already in use by another program; free it or set another port"
    return 1
  fi
}
is_proc() { # pid name -> the pid is alive and its command line mentions name
  [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null && grep -q "$2" "/proc/$1/cmdline" 2>/dev/null
}
stop_pid() { # pid name grace_s: SIGTERM, wait up to grace_s, then SIGKILL
  local p=$1 name=$2 grace=${3:-5} i
  is_proc "$p" "$name" || return 0
  kill "$p" 2>/dev/null
  for ((i = 0; i < grace * 10; i++)); do is_proc "$p" "$name" || return 0; sleep 0.1; done
  log "$name (pid $p) still running after ${grace}s: SIGKILL"
  kill -9 "$p" 2>/dev/null
}

# ---------------------------------------------------------------- tools
ensure_postfix() { # smtp-source, smtp-sink and postfix, from the distribution
  command -v smtp-source >/dev/null && command -v smtp-sink >/dev/null && command -v postfix >/dev/null && return 0
  command -v apt-get >/dev/null || { log "smtp-source missing and no apt-get: install postfix"; return 1; }
  ((EUID == 0)) || { log "smtp-source missing: run as root, or apt-get install postfix"; return 1; }
  log "installing postfix (for smtp-source, smtp-sink and the baseline)"
  # "No configuration": no /etc/postfix/main.cf, so the default instance cannot start
  # on port 25; the throwaway instance below has its own config directory.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null
  timeout 300 apt-get update >"$STATE/apt.log" 2>&1
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y postfix >>"$STATE/apt.log" 2>&1 ||
    { log "apt-get install postfix failed, see $STATE/apt.log"; return 1; }
  # On a host with systemd the package may have started the default instance anyway.
  if [[ -f /etc/postfix/main.cf ]] && timeout 30 postfix status >/dev/null 2>&1; then
    log "stopping the default postfix instance the package started"
    timeout 30 postfix stop >/dev/null 2>&1
    command -v systemctl >/dev/null && [[ -d /run/systemd/system ]] &&
      timeout 30 systemctl disable --now postfix >/dev/null 2>&1
  fi
  command -v smtp-source >/dev/null
}

# ---------------------------------------------------------------- smtp-sink
stop_sink() {
  [[ -f $STATE/sink.pid ]] && stop_pid "$(cat "$STATE/sink.pid")" smtp-sink 5
  rm -f "$STATE/sink.pid"
}
start_sink() {
  stop_sink
  need_free_port "$SINK_PORT" smtp-sink || return 1
  : >"$STATE/sink.out"
  local user=(); ((EUID == 0)) && user=(-u nobody)   # smtp-sink refuses to run as root without -u
  # -c: running counters (sess/quit/mesg) on stdout; -m 1024 simultaneous sessions, backlog 1024.
  # Bounded: it outlives every measured command by far, and is stopped explicitly anyway.
  timeout $((RUN_TIMEOUT * 10)) smtp-sink -c "${user[@]}" -m 1024 127.0.0.1:"$SINK_PORT" 1024 \
    >"$STATE/sink.out" 2>&1 &
  echo $! >"$STATE/sink.pid"
  wait_port "$SINK_PORT" || { log "smtp-sink did not start: $(tail -3 "$STATE/sink.out")"; return 1; }
}
sink_mesg() { # messages (completed DATA) counted by smtp-sink so far
  local m
  m=$(tr '\r' '\n' <"$STATE/sink.out" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2)
  echo "${m:-0}"
}
wait_sink() { # target timeout_s -> 0 when the counter reached target
  local target=$1 deadline
  deadline=$(($(date +%s) + $2))
  while (($(date +%s) < deadline)); do
    (($(sink_mesg) >= target)) && return 0
    sleep 0.05
  done
  return 1
}

bench_sink() {
  ensure_postfix || return 1
  start_sink || return 1
  local shape r extra m0 t0 t1 cond
  # r=RELAY_RCPT: the shape the relays receive; r=1: the shape of a per-recipient copy;
  # r=1 with -d: per-recipient copies over reused connections (what consent-relay's pool does).
  for shape in "$RELAY_RCPT:" "1:" "1:-d"; do
    r=${shape%%:*}; extra=${shape#*:}
    m0=$(sink_mesg)
    t0=$(now)
    bounded "$RUN_TIMEOUT" smtp-source ${extra:+"$extra"} -s "$RELAY_SESS" -l "$RELAY_LEN" -m "$N_SINK" -r "$r" \
      -f "$FROM" -t "$TO" 127.0.0.1:"$SINK_PORT" || log "smtp-source rc=$?"
    t1=$(now)
    wait_sink $((m0 + N_SINK)) 10 || log "sink saw only $(($(sink_mesg) - m0)) of $N_SINK"
    cond="smtp-source ${extra:+$extra }-s $RELAY_SESS -l $RELAY_LEN -r $r -m $N_SINK -> smtp-sink; sink got $(($(sink_mesg) - m0))/$N_SINK; $(secs "$t0" "$t1")s"
    local tag="r${r}${extra:+_reuse}"
    fig "sink_${tag}_msgs_per_s" "$(rate "$N_SINK" "$t0" "$t1")" "msg/s" "$cond"
    fig "sink_${tag}_rcpts_per_s" "$(rate $((N_SINK * r)) "$t0" "$t1")" "rcpt/s" "$cond"
  done
  stop_sink
}

# ---------------------------------------------------------------- measuring a relay
tree_cpu() { # pid -> cumulative CPU seconds of pid + all its (live or reaped) children
  [[ -n ${1:-} && -r /proc/$1/stat ]] || { echo 0; return; }
  timeout 30 python3 - "$1" <<'PY'
import os, sys
hz = os.sysconf("SC_CLK_TCK"); m = sys.argv[1]
def st(p):
    with open(f"/proc/{p}/stat") as f: s = f.read()
    return s[s.rindex(")") + 2:].split()
tot = 0
f = st(m); tot += sum(int(x) for x in f[11:15])   # utime stime cutime cstime of the root
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            f = st(p)
            if f[1] == m: tot += int(f[11]) + int(f[12])   # live children
        except Exception: pass
print(f"{tot / hz:.2f}")
PY
}
rss_sampler_start() { # pid -> every 0.2 s, sums VmRSS and Pss over pid and its direct
  # children (Postfix: master + its services) and keeps the peaks in $STATE/rss.peak as
  # "rss_kb pss_kb". One python process, no fork per sample, so it barely disturbs the run.
  # RSS counts shared pages (libraries) once per process; PSS shares them out, so the
  # PSS sum is the fair total for a multi-process server.
  echo "0 0" >"$STATE/rss.peak"
  timeout $((RUN_TIMEOUT * 3)) python3 - "$1" "$STATE/rss.peak" <<'PY' &
import os, signal, sys, time
root, out = sys.argv[1], sys.argv[2]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
def kb(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key): return int(line.split()[1])
    except OSError: pass
    return 0
def ppid(p):
    try:
        with open(f"/proc/{p}/stat") as f: s = f.read()
        return s[s.rindex(")") + 2:].split()[1]
    except (OSError, ValueError, IndexError): return None
peak_rss = peak_pss = 0
while os.path.exists(f"/proc/{root}"):
    pids = [root] + [p for p in os.listdir("/proc") if p.isdigit() and ppid(p) == root]
    rss = sum(kb(f"/proc/{p}/status", "VmRSS:") for p in pids)
    pss = sum(kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
    if rss > peak_rss or pss > peak_pss:
        peak_rss, peak_pss = max(rss, peak_rss), max(pss, peak_pss)
        with open(out + ".tmp", "w") as f: f.write(f"{peak_rss} {peak_pss}\n")
        os.replace(out + ".tmp", out)
    time.sleep(0.2)
PY
  echo $! >"$STATE/rss.pid"
}
rss_sampler_stop() { # the peaks stay in $STATE/rss.peak
  [[ -f $STATE/rss.pid ]] && { kill "$(cat "$STATE/rss.pid")" 2>/dev/null; wait "$(cat "$STATE/rss.pid")" 2>/dev/null; }
  rm -f "$STATE/rss.pid"
}
sys_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }

# drive a relay at 127.0.0.1:port; the sink must count `expect` deliveries
drive_relay() { # name port nmsg expect_deliveries cpu_fn
  local name=$1 port=$2 n=$3 expect=$4 cpufn=${5:-}
  local m0 t0 t1 t2 c0 c1 b0 b1 got cond busy0 all0 busy1 all1
  m0=$(sink_mesg)
  [[ -n $cpufn ]] && c0=$($cpufn)
  b0=$(sys_busy)
  t0=$(now)
  bounded "$RUN_TIMEOUT" smtp-source -s "$RELAY_SESS" -l "$RELAY_LEN" -m "$n" -r "$RELAY_RCPT" \
    -f "$FROM" -t "$TO" 127.0.0.1:"$port" || log "smtp-source rc=$?"
  t1=$(now)
  if ! wait_sink $((m0 + expect)) "$RUN_TIMEOUT"; then
    log "$name: sink got $(($(sink_mesg) - m0)) of $expect deliveries within ${RUN_TIMEOUT}s"
  fi
  t2=$(now)
  b1=$(sys_busy)
  [[ -n $cpufn ]] && c1=$($cpufn)
  got=$(($(sink_mesg) - m0))
  cond="smtp-source -s $RELAY_SESS -l $RELAY_LEN -r $RELAY_RCPT -m $n -> $name 127.0.0.1:$port -> smtp-sink; sink got $got/$expect deliveries; accept $(secs "$t0" "$t1")s, end-to-end $(secs "$t0" "$t2")s"
  [[ $BOUNCES == 1 && $name != postfix* ]] && cond+="; [bounces] domain set"
  fig "${name}_accept_msgs_per_s" "$(rate "$n" "$t0" "$t1")" "msg/s" "$cond"
  fig "${name}_accept_rcpts_per_s" "$(rate $((n * RELAY_RCPT)) "$t0" "$t1")" "rcpt/s" "$cond"
  fig "${name}_e2e_msgs_per_s" "$(rate "$n" "$t0" "$t2")" "msg/s" "$cond"
  fig "${name}_e2e_rcpts_per_s" "$(rate $((n * RELAY_RCPT)) "$t0" "$t2")" "rcpt/s" "$cond"
  fig "${name}_e2e_deliveries_per_s" "$(rate "$got" "$t0" "$t2")" "deliveries/s" "$cond"
  if [[ -n $cpufn ]]; then
    fig "${name}_cpu_seconds" "$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}')" "cpu-s" "CPU (user+sys) of $name processes over the end-to-end window"
    fig "${name}_cpu_ms_per_msg" "$(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN{printf "%.2f", (b-a)*1000/n}')" "cpu-ms/msg" "CPU of $name processes / accepted messages"
  fi
  read -r busy0 all0 <<<"$b0"
  read -r busy1 all1 <<<"$b1"
  fig "${name}_system_cpu_busy_pct" "$(awk -v a="$busy0" -v b="$busy1" -v x="$all0" -v y="$all1" 'BEGIN{printf "%.0f", 100*(b-a)/(y-x)}')" "%" "whole machine (all cores) busy during end-to-end window, incl. smtp-source and smtp-sink"
}

# drive_relay plus the RSS peak of the relay's processes and the exactly-once recount
measure_relay() { # name port nmsg expect_deliveries cpu_fn pid
  local name=$1 expect=$4 pid=$6 m0 got
  m0=$(sink_mesg)
  rss_sampler_start "$pid"
  drive_relay "$1" "$2" "$3" "$4" "$5"
  rss_sampler_stop
  local rss pss
  read -r rss pss <"$STATE/rss.peak"
  fig "${name}_rss_peak_kb" "$rss" "kB" "peak of the VmRSS sum over the process and its direct children, sampled every 0.2 s during the run"
  fig "${name}_pss_peak_kb" "$pss" "kB" "peak of the Pss sum (shared pages divided among sharers), same sampling"
  sleep "$SETTLE"   # a duplicate or late delivery still counts
  got=$(($(sink_mesg) - m0))
  local once=no; ((got == expect)) && once=yes
  fig "${name}_exactly_once" "$once" "bool" "sink got $got deliveries, expected exactly $expect (recounted ${SETTLE}s after the run)"
}

# ---------------------------------------------------------------- postfix
pf_stop() {
  if [[ -f $PFX/etc/main.cf ]]; then
    timeout 30 postfix -c "$PFX/etc" stop >/dev/null 2>&1 || true
    local p
    if [[ -f $PFX/spool/pid/master.pid ]]; then
      p=$(tr -d ' ' <"$PFX/spool/pid/master.pid")
      for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      if is_proc "$p" master; then
        kill "$p"; sleep 1; kill -0 "$p" 2>/dev/null && kill -9 "$p"
      fi
    fi
  fi
}
pf_setup() { # recipient_limit
  pf_stop
  need_free_port "$RELAY_PORT" "postfix smtpd" || return 1
  rm -rf "$PFX"
  mkdir -p "$PFX/etc" "$PFX/spool" "$PFX/data"
  chown postfix: "$PFX/data"
  cp /etc/postfix/master.cf "$PFX/etc/master.cf"
  cp /etc/postfix/dynamicmaps.cf "$PFX/etc/" 2>/dev/null
  cp -r /etc/postfix/dynamicmaps.cf.d "$PFX/etc/" 2>/dev/null
  cat >"$PFX/etc/main.cf" <<EOF
compatibility_level = 3.6
config_directory = $PFX/etc
queue_directory = $PFX/spool
data_directory = $PFX/data
myhostname = relay.bench.example
mydomain = bench.example
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$SINK_PORT
smtp_destination_recipient_limit = $1
maillog_file = $PFX/postfix.log
maillog_file_prefixes = /tmp, /var, /dev/stdout
biff = no
alias_maps =
alias_database =
local_recipient_maps =
smtp_tls_security_level = none
smtpd_tls_security_level = none
master_service_disable =
EOF
  # smtpd on 127.0.0.1:$RELAY_PORT instead of port 25; no chroot (queue under $STATE)
  postconf -c "$PFX/etc" -M# smtp/inet >/dev/null
  postconf -c "$PFX/etc" -M "127.0.0.1:$RELAY_PORT/inet=127.0.0.1:$RELAY_PORT inet n - n - - smtpd"
  postconf -c "$PFX/etc" -F '*/*/chroot = n'
  # A non-default config_directory must be listed in the default instance's main.cf;
  # whatever is changed there is put back by cleanup.
  if [[ ! -f /etc/postfix/main.cf ]]; then
    printf '%s\n' "# created by consent-relay bench/run.sh; the default instance is not started" \
      "compatibility_level = 3.6" "inet_interfaces = loopback-only" "master_service_disable = inet" \
      "alternate_config_directories = $PFX/etc" >/etc/postfix/main.cf
    touch "$STATE/created-etc-main.cf"
  elif ! postconf -h alternate_config_directories | grep -qF "$PFX/etc"; then
    postconf -n alternate_config_directories >"$STATE/etc-main.cf.alternate"   # empty if unset
    postconf -e "alternate_config_directories = $(postconf -h alternate_config_directories) $PFX/etc"
  fi
  timeout 60 postfix -c "$PFX/etc" check >/dev/null 2>&1   # creates queue dirs (post-install create-missing)
  timeout 60 postfix -c "$PFX/etc" start >/dev/null 2>&1 || { log "postfix start failed"; tail -5 "$PFX/postfix.log" >&2; return 1; }
  wait_port "$RELAY_PORT" || { log "postfix smtpd not listening"; return 1; }
}
pf_restore_etc() { # undo what pf_setup changed in the default instance's main.cf
  if [[ -f $STATE/created-etc-main.cf ]]; then
    rm -f /etc/postfix/main.cf "$STATE/created-etc-main.cf"
  elif [[ -f $STATE/etc-main.cf.alternate ]]; then
    if [[ -s $STATE/etc-main.cf.alternate ]]; then
      postconf -e "$(cat "$STATE/etc-main.cf.alternate")"
    else
      postconf -X alternate_config_directories
    fi
    rm -f "$STATE/etc-main.cf.alternate"
  fi
}
pf_pid() { tr -d ' ' <"$PFX/spool/pid/master.pid" 2>/dev/null; }
pf_cpu() { tree_cpu "$(pf_pid)"; }

bench_postfix() {
  ensure_postfix || return 1
  ((EUID == 0)) || { log "postfix step needs root (the master runs as root)"; return 1; }
  start_sink || return 1
  # a) default recipient grouping: 1 upstream delivery with $RELAY_RCPT rcpts per message
  if pf_setup 50; then
    measure_relay postfix "$RELAY_PORT" "$N_RELAY" "$N_RELAY" pf_cpu "$(pf_pid)"
  fi
  pf_stop
  # b) one upstream delivery per recipient (what consent-relay does: per-recipient rewritten copy)
  if pf_setup 1; then
    measure_relay postfix_perrcpt "$RELAY_PORT" "$N_RELAY_PERRCPT" $((N_RELAY_PERRCPT * RELAY_RCPT)) pf_cpu "$(pf_pid)"
  fi
  pf_stop
  pf_restore_etc
  stop_sink
}

# ---------------------------------------------------------------- consent-relay
relay_pid() { cat "$STATE/relay.pid" 2>/dev/null; }
relay_cpu() { tree_cpu "$(relay_pid)"; }
stop_relay() { # SIGTERM (graceful shutdown), SIGKILL after 35 s (the unit's TimeoutStopSec is 30)
  local p; p=$(relay_pid)
  [[ -n $p ]] && stop_pid "$p" relay.toml 35
  rm -f "$STATE/relay.pid"
}
relay_build() { # -> RELAY_EXE
  if [[ -n ${RELAY_BIN:-} ]]; then RELAY_EXE=$RELAY_BIN; return; fi
  log "cargo build --release (log: $STATE/build.log)"
  bounded "$BUILD_TIMEOUT" cargo build --release >"$STATE/build.log" 2>&1 ||
    { log "cargo build --release failed:"; tail -20 "$STATE/build.log" >&2; return 1; }
  RELAY_EXE=$REPO/target/release/consent-relay
}
relay_config() { # -> $STATE/relay.toml, with a fresh store under $STATE/relay (or RELAY_STORE_URL)
  rm -rf "$STATE/relay"
  mkdir -p "$STATE/relay"
  local key; key=$(head -c32 /dev/urandom | base64)
  # the relay's default max_connections (1000) would refuse part of the idle test
  local maxc=$((IDLE_CONNS + RELAY_SESS + 100 > 2000 ? IDLE_CONNS + RELAY_SESS + 100 : 2000))
  cat >"$STATE/relay.toml" <<EOF
# written by bench/run.sh; regenerated (new key, empty store) at each run
[smtp]
listen = "127.0.0.1:$RELAY_UNDER_TEST_PORT"
hostname = "relay.bench.example"
allowed_networks = ["127.0.0.0/8"]
# smtp-source sends no X-Campaign header: every message is "prospecting" (opt-out)
missing_campaign = "prospecting"
# the idle-connection test opens $IDLE_CONNS connections from 127.0.0.1
max_connections = $maxc
max_connections_per_ip = $maxc

[upstream]
url = "smtp://127.0.0.1:$SINK_PORT"
connections = $RELAY_CONNECTIONS
tls = "none"

[http]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"

[signing]
current = "k1"
keys = { k1 = "$key" }

[store]
url = "${RELAY_STORE_URL:-sqlite://$STATE/relay/consent-relay.db}"

[[campaign]]
id = "prospecting"
label = "Offers"
policy = "opt-out"

${RELAY_EXTRA:-}
EOF
  if [[ $BOUNCES == 1 ]]; then
    printf '\n[bounces]\ndomain = "bounces.bench.test"\n' >>"$STATE/relay.toml"
  fi
  chmod 600 "$STATE/relay.toml"
}
relay_start() { # bin
  local bin=$1
  stop_relay
  need_free_port "$RELAY_UNDER_TEST_PORT" consent-relay || return 1
  if ! timeout 30 "$bin" check-config --config "$STATE/relay.toml" >"$STATE/relay-check.log" 2>&1; then
    log "consent-relay check-config refused $STATE/relay.toml:"; cat "$STATE/relay-check.log" >&2
    return 1
  fi
  (
    cd "$STATE/relay" || exit 1
    # as under systemd (LimitNOFILE=65536), capped by this shell's hard limit
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    RUST_LOG=${RUST_LOG:-warn} exec timeout -s TERM $((RUN_TIMEOUT * 4)) \
      "$bin" serve --config "$STATE/relay.toml"
  ) >"$STATE/relay.log" 2>&1 &
  local wrapper=$!
  # the pid to measure is the relay itself, child of `timeout` (its command line
  # names relay.toml whatever the binary is called)
  local i p=
  for ((i = 0; i < 50; i++)); do
    p=$(pgrep -P "$wrapper" 2>/dev/null | head -1)
    [[ -n $p ]] && is_proc "$p" relay.toml && break
    sleep 0.1
  done
  echo "$p" >"$STATE/relay.pid"
  echo "$wrapper" >"$STATE/relay.timeout.pid"
  wait_port "$RELAY_UNDER_TEST_PORT" 300 ||
    { log "consent-relay not listening on $RELAY_UNDER_TEST_PORT:"; tail -20 "$STATE/relay.log" >&2; return 1; }
}
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

relay_idle_connections() { # pid port: RSS cost of $IDLE_CONNS idle, greeted connections
  local pid=$1 port=$2
  ((IDLE_CONNS > 0)) || return 0
  timeout $((IDLE_HOLD + 120)) python3 - "$pid" "$port" "$IDLE_CONNS" "$IDLE_HOLD" <<'PY' | tee -a "$FIGS"
import resource, socket, sys, time
pid, port, n, hold = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
def rss():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"): return int(line.split()[1])
    return 0
def fig(name, val, unit, cond):
    print(f"FIGURE\t{name}\t{val}\t{unit}\t{cond}", flush=True)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < n + 64:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(n + 64, hard), hard))
before = rss()
socks, refused = [], 0
deadline = time.monotonic() + 60
for _ in range(n):
    try:
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    except OSError:
        refused += 1
greeted = other = 0
for s in socks:   # all connections are open before the first greeting is read
    try:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        greeted += s.recv(512).startswith(b"220")
    except OSError:
        other += 1
t_open = time.monotonic()
time.sleep(min(1.0, hold))
during = rss()
time.sleep(max(0.0, hold - (time.monotonic() - t_open)))
for s in socks: s.close()
time.sleep(1)
after = rss()
cond = (f"{n} TCP connections to 127.0.0.1:{port}, {greeted} greeted with 220, {refused} refused, "
        f"{len(socks) - greeted} without 220; held {hold:.0f}s; VmRSS before {before} kB, "
        f"with connections {during} kB, 1 s after closing {after} kB")
fig("consent_relay_idle_rss_before_kb", before, "kB", cond)
fig("consent_relay_idle_rss_with_conns_kb", during, "kB", cond)
fig("consent_relay_idle_rss_delta_kb", during - before, "kB", cond)
fig("consent_relay_idle_rss_per_conn_bytes", (during - before) * 1024 // max(1, greeted), "bytes", cond)
fig("consent_relay_idle_greeted", greeted, "connections", cond)
PY
}

run_relay() { # name exe idle(yes|no): one consent-relay binary under the relay load
  local name=$1 exe=$2 idle=$3
  [[ -x $exe ]] || { log "no executable at $exe"; return 1; }
  relay_config
  start_sink || return 1
  if relay_start "$exe"; then
    local pid; pid=$(relay_pid)
    log "$name: pid $pid ($exe), VmRSS at start $(rss_kb "$pid") kB"
    # Idle connections first, on the fresh process: after the load run the allocator
    # would reuse freed memory for them and hide their cost.
    [[ $idle == yes ]] && relay_idle_connections "$pid" "$RELAY_UNDER_TEST_PORT"
    measure_relay "$name" "$RELAY_UNDER_TEST_PORT" "$N_RELAY" $((N_RELAY * RELAY_RCPT)) relay_cpu "$pid"
    fig "${name}_rss_after_run_kb" "$(rss_kb "$pid")" "kB" "VmRSS after the run and the ${SETTLE}s settle"
    local t0; t0=$(now)
    stop_relay
    fig "${name}_stop_seconds" "$(secs "$t0" "$(now)")" "s" "SIGTERM to exit, idle relay (SIGKILL after 35 s)"
    local nerr; nerr=$(grep -ciE 'error|panic' "$STATE/relay.log")
    ((nerr == 0)) || log "$STATE/relay.log: $nerr line(s) mention error or panic"
  fi
  stop_relay
  rm -f "$STATE/relay.timeout.pid"
  stop_sink
}

bench_relay() {
  ensure_postfix || return 1
  relay_build || return 1
  run_relay consent_relay "$RELAY_EXE" yes
}

# Another build of consent-relay under the same load, in the same run, to
# measure what a change costs (e.g. RELAY_BASE_BIN built from the commit
# before per-recipient rewriting): figures named consent_relay_base_*.
bench_relay_base() {
  [[ -n ${RELAY_BASE_BIN:-} ]] || { log "relay_base: set RELAY_BASE_BIN to a consent-relay binary; skipping"; return 0; }
  ensure_postfix || return 1
  # [bounces] only with BASE_BOUNCES=1: a build from before issue 14 refuses the section.
  BOUNCES=${BASE_BOUNCES:-0} run_relay consent_relay_base "$RELAY_BASE_BIN" no
}

# ---------------------------------------------------------------- PostgreSQL and scale
PG_BENCH_URL=${PG_BENCH_URL:-postgres://root@127.0.0.1:5432/test}
PG_SCHEMA=${PG_SCHEMA:-cr_bench}
SCALE_SUBJECTS=${SCALE_SUBJECTS:-1000000}
SCALE_SMALL=${SCALE_SMALL:-10000}
LOOKUP_RCPT=${LOOKUP_RCPT:-1000}
LOOKUP_REPEAT=${LOOKUP_REPEAT:-21}
pg_url() { echo "$PG_BENCH_URL?options%5Bsearch_path%5D=$PG_SCHEMA"; }
pg_fresh() { # an empty schema for this step
  psql -q -v ON_ERROR_STOP=1 "$PG_BENCH_URL" \
    -c "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE" -c "CREATE SCHEMA $PG_SCHEMA" >&2 ||
    { log "PostgreSQL at $PG_BENCH_URL: cannot create schema $PG_SCHEMA"; return 1; }
}

# The relay load with the store on PostgreSQL, one node.
bench_relay_pg() {
  ensure_postfix || return 1
  relay_build || return 1
  pg_fresh || return 1
  RELAY_STORE_URL=$(pg_url) run_relay consent_relay_pg "$RELAY_EXE" no
}

# Two nodes on one PostgreSQL database, the load split between them (half the
# sessions and messages each, at the same time); figures for the pair.
bench_relay_pg2() {
  ensure_postfix || return 1
  relay_build || return 1
  pg_fresh || return 1
  local port_b=$((RELAY_UNDER_TEST_PORT + 1))
  need_free_port "$port_b" "consent-relay node B" || return 1
  RELAY_STORE_URL=$(pg_url) relay_config
  sed -e "s/^listen = \"127.0.0.1:$RELAY_UNDER_TEST_PORT\"/listen = \"127.0.0.1:$port_b\"/" \
    "$STATE/relay.toml" >"$STATE/relay-b.toml"
  start_sink || return 1
  relay_start "$RELAY_EXE" || { stop_sink; return 1; }
  local pid_a; pid_a=$(relay_pid)
  ( RUST_LOG=${RUST_LOG:-warn} exec timeout -s TERM $((RUN_TIMEOUT * 4)) \
      "$RELAY_EXE" serve --config "$STATE/relay-b.toml" ) >"$STATE/relay-b.log" 2>&1 &
  local wrapper_b=$! pid_b=
  wait_port "$port_b" 300 || { log "node B not listening:"; tail -20 "$STATE/relay-b.log" >&2; }
  pid_b=$(pgrep -P "$wrapper_b" | head -1)
  local n=$N_RELAY half=$((N_RELAY / 2)) sess=$((RELAY_SESS / 2 > 0 ? RELAY_SESS / 2 : 1))
  local expect=$((n * RELAY_RCPT)) m0 t0 t1 t2 c0 c1 got
  pair_cpu() { awk -v a="$(tree_cpu "$pid_a")" -v b="$(tree_cpu "$pid_b")" 'BEGIN{printf "%.2f", a+b}'; }
  m0=$(sink_mesg); c0=$(pair_cpu); t0=$(now)
  timeout "$RUN_TIMEOUT" smtp-source -s "$sess" -l "$RELAY_LEN" -m "$half" -r "$RELAY_RCPT" \
    -f "$FROM" -t "$TO" 127.0.0.1:"$RELAY_UNDER_TEST_PORT" &
  local sa=$!
  timeout "$RUN_TIMEOUT" smtp-source -s "$sess" -l "$RELAY_LEN" -m $((n - half)) -r "$RELAY_RCPT" \
    -f "$FROM" -t "$TO" 127.0.0.1:"$port_b" &
  local sb=$!
  wait "$sa"; wait "$sb"
  t1=$(now)
  wait_sink $((m0 + expect)) "$RUN_TIMEOUT" || log "pg2: sink got $(($(sink_mesg) - m0)) of $expect"
  t2=$(now); c1=$(pair_cpu)
  sleep "$SETTLE"
  got=$(($(sink_mesg) - m0))
  local cond="2 x smtp-source -s $sess -l $RELAY_LEN -r $RELAY_RCPT (m $half + $((n - half))) -> consent-relay nodes A :$RELAY_UNDER_TEST_PORT and B :$port_b on one PostgreSQL schema -> smtp-sink; sink got $got/$expect"
  fig consent_relay_pg2_accept_msgs_per_s "$(rate "$n" "$t0" "$t1")" msg/s "$cond"
  fig consent_relay_pg2_e2e_rcpts_per_s "$(rate "$expect" "$t0" "$t2")" rcpt/s "$cond"
  fig consent_relay_pg2_e2e_deliveries_per_s "$(rate "$got" "$t0" "$t2")" deliveries/s "$cond"
  fig consent_relay_pg2_cpu_ms_per_msg "$(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN{printf "%.2f", (b-a)*1000/n}')" cpu-ms/msg "CPU of both nodes / accepted messages"
  local once=no; ((got == expect)) && once=yes
  fig consent_relay_pg2_exactly_once "$once" bool "sink got $got deliveries, expected exactly $expect"
  stop_pid "$pid_b" relay-b.toml 35
  stop_pid "$wrapper_b" timeout 5
  stop_relay
  rm -f "$STATE/relay.timeout.pid"
  stop_sink
}

# Seeds $SCALE_SUBJECTS people with a grant for "prospecting" (plus the
# 0..RELAY_RCPT-1 rcpt@example.net addresses smtp-source sends to) into the
# store the relay just created. The store must be stopped.
seed_subjects() { # sqlite|pg from to: people from..to-1 (plus the load's RELAY_RCPT when from=0), each with a grant
  local kind=$1 from=$2 to=$3
  if [[ $kind == sqlite ]]; then
    python3 - "$STATE/relay/consent-relay.db" "$from" "$to" "$RELAY_RCPT" <<'PY'
import base64, sqlite3, sys, hashlib
db, lo, hi, r = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
c = sqlite3.connect(db)
c.execute("PRAGMA synchronous=OFF")
people = [(r + i, f"user{i}@example.org") for i in range(lo, hi)]
if lo == 0:
    people = [(i, f"{i}rcpt@example.net") for i in range(r)] + people
now = 1_700_000_000_000
# subject ids are 16 bytes in base64url (22 characters), as the relay makes them
sid = lambda i: base64.urlsafe_b64encode(i.to_bytes(16, "big")).rstrip(b"=").decode()
with c:
    for k in range(0, len(people), 50_000):
        chunk = people[k:k + 50_000]
        c.executemany("INSERT INTO subjects (id, address, address_hash, key_id, created_at) VALUES (?, ?, ?, 'k1', ?)",
                      [(sid(g), a, hashlib.sha256(a.encode()).hexdigest(), now) for g, a in chunk])
        c.executemany("INSERT INTO consent_events (subject_id, campaign, action, at, source, recorded_at) VALUES (?, 'prospecting', 'grant', ?, 'import', ?)",
                      [(sid(g), now, now) for g, _ in chunk])
    c.execute("INSERT INTO consent_state (subject_id, campaign, status, since, event_id) "
              "SELECT subject_id, campaign, 'granted', at, id FROM consent_events e "
              "WHERE NOT EXISTS (SELECT 1 FROM consent_state s WHERE s.subject_id = e.subject_id)")
# settle as a store that grew over time would be: statistics, WAL folded in
c.execute("ANALYZE")
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print(c.execute("SELECT COUNT(*) FROM subjects").fetchone()[0])
PY
  else
    local first=$((from == 0 ? 0 : from + RELAY_RCPT))
    psql -q -t -A -v ON_ERROR_STOP=1 "$PG_BENCH_URL" <<SQL
SET search_path = $PG_SCHEMA;
INSERT INTO subjects (id, address, address_hash, key_id, created_at)
  SELECT rtrim(translate(encode(decode(lpad(to_hex(g), 32, '0'), 'hex'), 'base64'), '+/', '-_'), '='),
         CASE WHEN g < $RELAY_RCPT THEN g || 'rcpt@example.net' ELSE 'user' || (g - $RELAY_RCPT) || '@example.org' END,
         md5(g::text), 'k1', 1700000000000
  FROM generate_series($first, $to + $RELAY_RCPT - 1) g;
INSERT INTO consent_events (subject_id, campaign, action, at, source, recorded_at)
  SELECT id, 'prospecting', 'grant', 1700000000000, 'import', 1700000000000 FROM subjects s
  WHERE NOT EXISTS (SELECT 1 FROM consent_events e WHERE e.subject_id = s.id);
INSERT INTO consent_state (subject_id, campaign, status, since, event_id)
  SELECT subject_id, campaign, 'granted', at, id FROM consent_events e
  WHERE NOT EXISTS (SELECT 1 FROM consent_state s WHERE s.subject_id = e.subject_id);
SELECT COUNT(*) FROM subjects;
SQL
    # settle as a store that grew over time would be (autovacuum of the bulk
    # insert and its checkpoint would otherwise run during the measurement)
    psql -q -v ON_ERROR_STOP=1 "$PG_BENCH_URL" -c "SET search_path = $PG_SCHEMA" \
      -c "VACUUM (ANALYZE) subjects, consent_events, consent_state" -c "CHECKPOINT" >&2
  fi
}

# The relay's consent lookup (the statement intake sends, same text) for
# LOOKUP_RCPT people picked at random among the first $2 seeded, repeated
# LOOKUP_REPEAT times on one connection; prints the median milliseconds and
# logs the plan. PostgreSQL: through psql (a real round trip each);
# SQLite: python's sqlite3 on the file (in-process, as the relay reads it).
lookup_cost() { # sqlite|pg seeded_people
  local kind=$1 seeded=$2
  if [[ $kind == sqlite ]]; then
    python3 - "$STATE/relay/consent-relay.db" "$seeded" "$LOOKUP_RCPT" "$LOOKUP_REPEAT" <<'PY'
import random, sqlite3, statistics, sys, time, hashlib
db, seeded, n, rep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
c = sqlite3.connect(db)
sql = ("SELECT s.address, s.id, s.address_hash, cs.campaign, cs.status, cs.since, cs.event_id "
       "FROM subjects s LEFT JOIN consent_state cs ON cs.subject_id = s.id AND cs.campaign IN (?, '*') "
       "WHERE s.address IN ({a}) OR (s.address IS NULL AND s.address_hash IN ({h}))")
times, rows = [], 0
for _ in range(rep):
    addrs = [f"user{random.randrange(seeded)}@example.org" for _ in range(n)]
    hashes = [hashlib.sha256(a.encode()).hexdigest() for a in addrs]
    q = sql.format(a=", ".join("?" * n), h=", ".join("?" * (n + 1)))
    t = time.perf_counter()
    rows = len(c.execute(q, ["prospecting", *addrs, "", *hashes]).fetchall())
    times.append((time.perf_counter() - t) * 1000)
plan = " / ".join(r[-1] for r in c.execute("EXPLAIN QUERY PLAN " + q, ["prospecting", *addrs, "", *hashes]))
print(f"# sqlite plan: {plan}; last lookup {rows} rows", file=sys.stderr)
print(f"{statistics.median(times):.2f}")
PY
  else
    local i sqlf=$STATE/lookup.sql
    {
      echo "SET search_path = $PG_SCHEMA;"
      for ((i = 0; i <= LOOKUP_REPEAT; i++)); do
        ((i == 0)) && echo "EXPLAIN" || echo '\timing on'
        # the relay's statement with its arrays written out (psql has no binds)
        python3 -c '
import random, sys, hashlib
seeded, n = int(sys.argv[1]), int(sys.argv[2])
a = [f"user{random.randrange(seeded)}@example.org" for _ in range(n)]
h = [hashlib.sha256(x.encode()).hexdigest() for x in a]
arr = lambda v: "ARRAY[" + ",".join(f"\x27{x}\x27" for x in v) + "]::text[]"
print("SELECT count(*) FROM (SELECT s.address, s.id, s.address_hash, cs.campaign, cs.status, cs.since, cs.event_id "
      "FROM subjects s LEFT JOIN consent_state cs ON cs.subject_id = s.id AND cs.campaign IN (\x27prospecting\x27, \x27*\x27) "
      f"WHERE s.address = ANY({arr(a)}) OR (s.address IS NULL AND s.address_hash = ANY({arr(h)}))) q;")
' "$seeded" "$LOOKUP_RCPT"
        ((i == 0)) || echo '\timing off'
      done
    } >"$sqlf"
    psql -v ON_ERROR_STOP=1 -t -A "$PG_BENCH_URL" -f "$sqlf" >"$STATE/lookup.out" 2>&1 ||
      { log "lookup_cost: psql failed:"; tail -5 "$STATE/lookup.out" >&2; return 1; }
    log "pg plan: $(grep -iE 'scan|join' "$STATE/lookup.out" | sed 's/  */ /g' | head -6 | paste -sd'/')"
    grep -E '^Time: ' "$STATE/lookup.out" | awk '{print $2}' | sort -n |
      awk '{t[NR] = $1} END {if (NR) printf "%.2f\n", (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2}'
  fi
}

# The accept rate as the consent table grows: the same load on an empty store
# and on one holding $SCALE_SUBJECTS people with grants, SQLite and
# PostgreSQL. Decisions are one indexed lookup per recipient, batched per
# message, so the two rates should be the same. Then the lookup alone: one
# statement for LOOKUP_RCPT recipients with SCALE_SMALL and with
# SCALE_SUBJECTS people stored (should cost the same).
bench_consent_scale() {
  ensure_postfix || return 1
  relay_build || return 1
  local kind url name subjects ms
  for kind in ${SCALE_KINDS:-sqlite pg}; do
    if [[ $kind == pg ]]; then pg_fresh || continue; url=$(pg_url); else url=; fi
    # empty store
    RELAY_STORE_URL=$url run_relay "consent_relay_${kind}_empty" "$RELAY_EXE" no
    # seeded store: let the relay create its schema, stop it, seed, measure
    if [[ $kind == pg ]]; then pg_fresh || continue; fi
    RELAY_STORE_URL=$url relay_config
    start_sink || return 1
    relay_start "$RELAY_EXE" && stop_relay
    local ts; ts=$(now)
    subjects=$(seed_subjects "$kind" 0 "$SCALE_SMALL" | tail -1)
    log "seeded $subjects subjects ($kind) in $(secs "$ts" "$(now)")s"
    ms=$(lookup_cost "$kind" "$SCALE_SMALL") &&
      fig "consent_lookup_${kind}_${SCALE_SMALL}_ms" "$ms" ms "median of $LOOKUP_REPEAT lookups of $LOOKUP_RCPT random stored people, one statement each, $subjects subjects stored"
    ts=$(now)
    subjects=$(seed_subjects "$kind" "$SCALE_SMALL" "$SCALE_SUBJECTS" | tail -1)
    log "seeded up to $subjects subjects ($kind) in $(secs "$ts" "$(now)")s"
    ms=$(lookup_cost "$kind" "$SCALE_SUBJECTS") &&
      fig "consent_lookup_${kind}_${SCALE_SUBJECTS}_ms" "$ms" ms "median of $LOOKUP_REPEAT lookups of $LOOKUP_RCPT random stored people, one statement each, $subjects subjects stored"
    name="consent_relay_${kind}_${SCALE_SUBJECTS}"
    if relay_start "$RELAY_EXE"; then
      measure_relay "$name" "$RELAY_UNDER_TEST_PORT" "$N_RELAY" $((N_RELAY * RELAY_RCPT)) relay_cpu "$(relay_pid)"
      fig "${name}_subjects" "$subjects" subjects "rows in subjects (each with a grant event and state) during the run"
    fi
    stop_relay
    rm -f "$STATE/relay.timeout.pid"
    stop_sink
    # the empty store again, after: the spread of the accept rate within one run
    if [[ $kind == pg ]]; then pg_fresh || continue; fi
    RELAY_STORE_URL=$url run_relay "consent_relay_${kind}_empty2" "$RELAY_EXE" no
  done
}

# ---------------------------------------------------------------- report intake
N_FEEDBACK=${N_FEEDBACK:-10000}
FEEDBACK_SESS=${FEEDBACK_SESS:-20}
FEEDBACK_DOMAIN=bounces.bench.example

sqlite_rows() { # db sql -> tab-separated rows
  timeout 120 python3 - "$1" "$2" <<'PY'
import sqlite3, sys
for row in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]):
    print("\t".join(str(c) for c in row))
PY
}

# The SMTP door under load: first N_FEEDBACK copies through the relay (each to
# another person, smtp-source -N) so that every report names a real delivery,
# then one realistic DSN per copy (a hard bounce, 5.1.1) from FEEDBACK_SESS
# connections. reports/s is to the last 250 (each after the report is stored);
# then the store must show every report once, processed, and one suppression each.
bench_feedback() {
  ensure_postfix || return 1
  relay_build || return 1
  local db=$STATE/relay/consent-relay.db n msgs key t0 t1 c0 c1
  # The step writes [bounces] itself (BOUNCES=1 would write it twice).
  BOUNCES=0 RELAY_EXTRA=$(printf '[bounces]\ndomain = "%s"\n' "$FEEDBACK_DOMAIN") relay_config
  start_sink || return 1
  relay_start "$RELAY_EXE" || return 1
  msgs=$(((N_FEEDBACK + RELAY_RCPT - 1) / RELAY_RCPT))
  bounded "$RUN_TIMEOUT" smtp-source -N -s "$RELAY_SESS" -l "$RELAY_LEN" -m "$msgs" -r "$RELAY_RCPT" \
    -f "$FROM" -t "$TO" 127.0.0.1:"$RELAY_UNDER_TEST_PORT" || log "smtp-source rc=$?"
  wait_sink $((msgs * RELAY_RCPT)) "$RUN_TIMEOUT" || log "feedback: sink got only $(sink_mesg) copies"
  sqlite_rows "$db" "SELECT id, recipient FROM deliveries WHERE status = 'sent' ORDER BY id LIMIT $N_FEEDBACK" >"$STATE/feedback.ids"
  n=$(wc -l <"$STATE/feedback.ids")
  ((n > 0)) || { log "feedback: no sent copies to bounce"; stop_relay; stop_sink; return 1; }
  key=$(sed -n 's/^keys = { k1 = "\(.*\)" }$/\1/p' "$STATE/relay.toml")
  c0=$(relay_cpu)
  t0=$(now)
  bounded "$RUN_TIMEOUT" python3 "$REPO/bench/feedback.py" --port "$RELAY_UNDER_TEST_PORT" \
    --domain "$FEEDBACK_DOMAIN" --key "$key" --ids "$STATE/feedback.ids" --sessions "$FEEDBACK_SESS" \
    >"$STATE/feedback.out" || log "feedback.py: not every report was answered 250"
  t1=$(now)
  c1=$(relay_cpu)
  tee -a "$FIGS" <"$STATE/feedback.out"
  fig feedback_cpu_ms_per_report "$(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN{printf "%.2f", (b-a)*1000/n}')" \
    cpu-ms/report "CPU of the relay over the $(secs "$t0" "$t1")s the $n reports took"
  sleep "$SETTLE"   # a report left pending is processed by serve's loop
  local rows done sup once=no
  read -r rows done sup < <(sqlite_rows "$db" "SELECT (SELECT count(*) FROM feedback_reports), (SELECT count(*) FROM feedback_reports WHERE state = 'done'), (SELECT count(DISTINCT subject_id) FROM suppressions WHERE removed_at IS NULL)")
  ((rows == n && done == n && sup == n)) && once=yes
  fig feedback_exactly_once "$once" bool "$n reports sent: $rows stored, $done processed, $sup people suppressed (expected $n each, ${SETTLE}s after the run)"
  stop_relay
  rm -f "$STATE/relay.timeout.pid"
  stop_sink
}

# ---------------------------------------------------------------- the console's overview at scale
OV_PEOPLE=${OV_PEOPLE:-1000000}
OV_DECISIONS=${OV_DECISIONS:-10000000}
OV_RCPT=${OV_RCPT:-10}
OV_DAYS=${OV_DAYS:-365}
OV_READS=${OV_READS:-50}
OV_REQUESTS=${OV_REQUESTS:-100}
OV_HTTP_PORT=${OV_HTTP_PORT:-8089}
OV_SEED_TIMEOUT=${OV_SEED_TIMEOUT:-3600}
OV_PROFILE=${OV_PROFILE:-bench}

# GET /admin over HTTP (then GET /admin?days=90, its widest charts),
# OV_REQUESTS times each on one keep-alive connection, after
# signing in as a browser does: the sign-in form's hidden fields (a CSRF
# token) and cookies kept, POST /admin/sign-in with the token, the session
# cookie sent with every request. Prints FIGURE lines; exit 3 when this
# build serves no /admin.
admin_http_loop() { # port token requests
  timeout "$RUN_TIMEOUT" python3 - "$1" "$2" "$3" <<'PY'
import http.client, re, sys, time, urllib.parse
port, token, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
origin = f"http://127.0.0.1:{port}"
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
cookies = {}
def request(method, path, body=None, headers=None):
    h = dict(headers or {})
    if cookies:
        h["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    for k, v in r.getheaders():
        if k.lower() == "set-cookie":
            name, _, rest = v.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
    return r.status, data.decode("utf-8", "replace")
def fig(name, val, unit, cond):
    print(f"FIGURE\t{name}\t{val}\t{unit}\t{cond}", flush=True)
status, page = request("GET", "/admin")
if status == 404:
    print("# overview: this build serves no /admin (GET /admin answered 404); HTTP loop skipped", file=sys.stderr)
    sys.exit(3)
form = {"token": token}
for tag in re.findall(r"<input[^>]*>", page):
    if re.search(r'type="?hidden', tag):
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            form[name.group(1)] = value.group(1) if value else ""
status, _ = request("POST", "/admin/sign-in", urllib.parse.urlencode(form),
                    {"Content-Type": "application/x-www-form-urlencoded", "Origin": origin})
if status >= 400:
    sys.exit(f"# overview: POST /admin/sign-in answered {status}")
def timed(path, prefix, what):
    times, size = [], 0
    for i in range(n + 1):
        t = time.perf_counter()
        status, page = request("GET", path)
        ms = (time.perf_counter() - t) * 1000
        if status != 200 or 'name="token"' in page:
            sys.exit(f"# overview: GET {path} answered {status}{' with the sign-in form' if status == 200 else ''}")
        times.append(ms)
        size = len(page)
    first, rest = times[0], sorted(times[1:])
    at = lambda q: rest[round((len(rest) - 1) * q)]
    cond = (f"GET {path} ({what}) {n} times one after another on one keep-alive connection, "
            f"signed in with an operator token; page {size} bytes")
    fig(f"{prefix}_first_ms", f"{first:.1f}", "ms", cond)
    fig(f"{prefix}_p50_ms", f"{at(0.5):.1f}", "ms", cond)
    fig(f"{prefix}_p95_ms", f"{at(0.95):.1f}", "ms", cond)
    fig(f"{prefix}_max_ms", f"{at(1.0):.1f}", "ms", cond)
# The page as it opens (charts over 30 days), then its widest charts.
timed("/admin", "admin_http", "the overview")
timed("/admin?days=90", "admin_http_90d", "the overview, charts over 90 days")
PY
}

# The console's overview at scale: the relay creates a fresh SQLite store,
# bench/seed_overview.py fills it (OV_DECISIONS decision rows, OV_PEOPLE
# people, OV_DAYS days; the rollups by migration 0011's backfill), then
# Store::overview is timed in-process (`cargo bench --bench overview`; the
# store read alone) and GET /admin over HTTP against `serve` on the store.
bench_overview() {
  relay_build || return 1
  local db=$STATE/relay/consent-relay.db token digest
  relay_config
  # The console on a port of its own (no rate limit in the loop), and an
  # operator token: today's [http] admin_token_sha256, which the console
  # takes as operator `admin`, role admin.
  token=$(head -c24 /dev/urandom | base64 | tr '+/' '-_')
  digest=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
  sed -i -e "s|^listen = \"127.0.0.1:0\"|listen = \"127.0.0.1:$OV_HTTP_PORT\"\nadmin_token_sha256 = [\"$digest\"]\nrate_limit = 0|" \
    -e "s|^public_url = .*|public_url = \"http://127.0.0.1:$OV_HTTP_PORT\"|" "$STATE/relay.toml"
  # Any command that opens the store runs the migrations.
  timeout 120 "$RELAY_EXE" queue --config "$STATE/relay.toml" >"$STATE/overview-migrate.log" 2>&1 ||
    { log "overview: the relay could not create its store:"; tail -5 "$STATE/overview-migrate.log" >&2; return 1; }
  local t0; t0=$(now)
  bounded "$OV_SEED_TIMEOUT" python3 "$REPO/bench/seed_overview.py" "$db" "$REPO/migrations/sqlite/0011_rollups.sql" \
    --people "$OV_PEOPLE" --decisions "$OV_DECISIONS" --rcpt "$OV_RCPT" --days "$OV_DAYS" >"$STATE/seed.out" ||
    { log "overview: seeding failed"; return 1; }
  tee -a "$FIGS" <"$STATE/seed.out"
  fig overview_seed_seconds "$(secs "$t0" "$(now)")" s "bench/seed_overview.py, all of it; store $(du -h "$db" | cut -f1)"
  # The relay's first open of a store holding people runs its one-time
  # identity step (store::ops::identity) over them, as a relay that has
  # run on this store did once; not part of what is timed below.
  t0=$(now)
  timeout "$OV_SEED_TIMEOUT" "$RELAY_EXE" queue --config "$STATE/relay.toml" >"$STATE/overview-open.log" 2>&1 ||
    { log "overview: the relay could not open the seeded store:"; tail -5 "$STATE/overview-open.log" >&2; return 1; }
  fig overview_first_open_seconds "$(secs "$t0" "$(now)")" s "the relay's first open of the seeded store (its one-time identity step over $OV_PEOPLE people), $RELAY_EXE"
  if command -v cargo >/dev/null; then
    log "overview: Store::overview in-process (cargo bench --bench overview; log: $STATE/overview-build.log)"
    if bounded "$BUILD_TIMEOUT" cargo bench --profile "$OV_PROFILE" --bench overview -- "$db" "$OV_READS" 30 \
      >"$STATE/overview-read.out" 2>"$STATE/overview-build.log"; then
      tee -a "$FIGS" <"$STATE/overview-read.out"
    else
      log "overview: cargo bench --bench overview failed:"; tail -20 "$STATE/overview-build.log" >&2
    fi
  else
    log "overview: no cargo; the store read is not timed alone"
  fi
  if relay_start "$RELAY_EXE"; then
    admin_http_loop "$OV_HTTP_PORT" "$token" "$OV_REQUESTS" | tee -a "$FIGS"
  fi
  stop_relay
  rm -f "$STATE/relay.timeout.pid"
}

# ---------------------------------------------------------------- summary
summary() { # markdown table from this run's figures
  [[ -s $FIGS ]] || return 0
  awk -F'\t' -v rcpt="$RELAY_RCPT" -v lrcpt="$LOOKUP_RCPT" '
    { v[$2] = $3 }
    function g(k) { return (k in v) ? v[k] : "—" }
    function ratio(a, b) { return ((a in v) && (b in v) && v[b] > 0) ? sprintf("%.2f", v[a] / v[b]) : "—" }
    function row(label, p) {
      printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", label, g(p "_accept_msgs_per_s"),
        g(p "_e2e_rcpts_per_s"), g(p "_e2e_deliveries_per_s"), g(p "_cpu_ms_per_msg"),
        g(p "_rss_peak_kb"), g(p "_pss_peak_kb"), g(p "_exactly_once")
    }
    END {
      print ""
      print "| setup | accepted msg/s | recipients delivered/s (e2e) | upstream transactions/s (e2e) | CPU ms/msg | RSS peak kB | PSS peak kB | exactly once |"
      print "|---|---|---|---|---|---|---|---|"
      k = "sink_r" rcpt
      if ((k "_msgs_per_s") in v)
        printf "| smtp-source -> smtp-sink (limit, %s rcpt/msg) | %s | %s | %s | — | — | — | — |\n", rcpt,
          v[k "_msgs_per_s"], v[k "_rcpts_per_s"], v[k "_msgs_per_s"]
      if ("sink_r1_reuse_msgs_per_s" in v)
        printf "| smtp-source -d -> smtp-sink (limit for 1-rcpt copies, reused connections) | — | %s | %s | — | — | — | — |\n",
          v["sink_r1_reuse_rcpts_per_s"], v["sink_r1_reuse_msgs_per_s"]
      if ("postfix_accept_msgs_per_s" in v) row("Postfix, default grouping", "postfix")
      if ("postfix_perrcpt_accept_msgs_per_s" in v) row("Postfix, 1 recipient per delivery", "postfix_perrcpt")
      if ("consent_relay_accept_msgs_per_s" in v) row("consent-relay", "consent_relay")
      if ("consent_relay_base_accept_msgs_per_s" in v) row("consent-relay, RELAY_BASE_BIN", "consent_relay_base")
      if ("consent_relay_pg_accept_msgs_per_s" in v) row("consent-relay on PostgreSQL, 1 node", "consent_relay_pg")
      if ("consent_relay_pg2_accept_msgs_per_s" in v) row("consent-relay on PostgreSQL, 2 nodes", "consent_relay_pg2")
      for (k in v) if (k ~ /^consent_relay_(sqlite|pg)_[a-z0-9]+_accept_msgs_per_s$/) {
        p = k; sub(/_accept_msgs_per_s$/, "", p); scale[p] = 1
      }
      for (p in scale) row(p, p)
      if (("consent_relay_accept_msgs_per_s" in v) && (("postfix_accept_msgs_per_s" in v) || ("postfix_perrcpt_accept_msgs_per_s" in v))) {
        print ""
        print "| consent-relay / Postfix | accept msg/s | recipients delivered/s (e2e) |"
        print "|---|---|---|"
        printf "| vs default grouping | %s | %s |\n", ratio("consent_relay_accept_msgs_per_s", "postfix_accept_msgs_per_s"),
          ratio("consent_relay_e2e_rcpts_per_s", "postfix_e2e_rcpts_per_s")
        printf "| vs 1 recipient per delivery | %s | %s |\n", ratio("consent_relay_accept_msgs_per_s", "postfix_perrcpt_accept_msgs_per_s"),
          ratio("consent_relay_e2e_rcpts_per_s", "postfix_perrcpt_e2e_rcpts_per_s")
      }
      if (("consent_relay_accept_msgs_per_s" in v) && ("consent_relay_base_accept_msgs_per_s" in v))
        printf "\nconsent-relay / RELAY_BASE_BIN: accept %s, deliveries (e2e) %s\n",
          ratio("consent_relay_accept_msgs_per_s", "consent_relay_base_accept_msgs_per_s"),
          ratio("consent_relay_e2e_deliveries_per_s", "consent_relay_base_e2e_deliveries_per_s")
      for (k in v) if (k ~ /^consent_lookup_/) lookups = lookups sprintf("\n%s: %s ms", k, v[k])
      if (lookups != "") print "\nconsent lookup, one statement for " lrcpt " recipients (median):" lookups
      if ("feedback_reports_per_s" in v)
        printf "\nreport intake (SMTP door, ~3 KB DSNs): %s reports/s, %s CPU ms/report, exactly once: %s\n",
          v["feedback_reports_per_s"], g("feedback_cpu_ms_per_report"), g("feedback_exactly_once")
      if ("overview_read_p50_ms" in v)
        printf "\nconsole overview, %s days (seeded in %s s): Store::overview p50 %s ms, p95 %s ms, max %s ms\n",
          30, g("overview_seed_seconds"), v["overview_read_p50_ms"], g("overview_read_p95_ms"), g("overview_read_max_ms")
      if ("admin_http_p50_ms" in v)
        printf "console overview over HTTP (GET /admin): p50 %s ms, p95 %s ms, max %s ms\n",
          v["admin_http_p50_ms"], g("admin_http_p95_ms"), g("admin_http_max_ms")
      if ("admin_http_90d_p50_ms" in v)
        printf "console overview over HTTP, charts over 90 days (GET /admin?days=90): p50 %s ms, p95 %s ms, max %s ms\n",
          v["admin_http_90d_p50_ms"], g("admin_http_90d_p95_ms"), g("admin_http_90d_max_ms")
      if ("consent_relay_idle_rss_delta_kb" in v)
        printf "\nconsent-relay, %s idle connections: +%s kB RSS (%s bytes per connection)\n",
          g("consent_relay_idle_greeted"), v["consent_relay_idle_rss_delta_kb"], g("consent_relay_idle_rss_per_conn_bytes")
    }' "$FIGS"
}

cleanup() {
  [[ -n ${BOUNDED_PID:-} ]] && kill "$BOUNDED_PID" 2>/dev/null   # timeout passes it on
  rss_sampler_stop
  stop_relay
  [[ -f $STATE/relay.timeout.pid ]] && { stop_pid "$(cat "$STATE/relay.timeout.pid")" timeout 5; rm -f "$STATE/relay.timeout.pid"; }
  pf_stop
  pf_restore_etc
  stop_sink
}
trap cleanup EXIT
trap 'exit 130' INT TERM

steps=("$@"); ((${#steps[@]})) || steps=(sink postfix relay)
for s in "${steps[@]}"; do
  declare -F "bench_$s" >/dev/null || { log "unknown step '$s' (steps: sink postfix relay relay_base relay_pg relay_pg2 consent_scale feedback overview)"; exit 2; }
done
cleanup   # leftovers of an interrupted earlier run
: >"$FIGS"
fig host_cpus "$(nproc)" cores "$(uname -r); $(. /etc/os-release; echo "$PRETTY_NAME"); load average $(cut -d' ' -f1-3 /proc/loadavg)"
for s in "${steps[@]}"; do
  log "== $s"
  "bench_$s"
done
summary
