#!/usr/bin/env bash
# bench.sh measures rundock side by side with what operators use instead, in one run on
# one machine, prints the tables and writes them to BENCHMARKS.md (`make bench`).
#
#   converge   rundock apply (CLI), rundock as an Ansible module, and an Ansible template +
#              community.general.runit play, first run and second (nothing changed) run;
#              then the module's per-task cost (module, below)
#   module     per-task cost of the rundock module beside a trivial Go binary module
#              (bench/module/trivial) and ansible.builtin.ping; part of converge, or alone
#              with BENCH_ONLY=module (no Docker needed then, nor the runit collection)
#   latency    docker start/stop/kill and announcer SIGKILL -> record in etcd / CoreDNS
#              answer, beside the original timer loop (bench/baseline/announce-loop.sh)
#   footprint  one idle announcer vs the timer loop: memory, CPU, etcd requests
#   memory     N = 1, 10, 50 announcers on one host vs N timer loops: RSS, PSS, private memory
#   scale      N announcers (their own code, one etcd client each) against one etcd
#   upstreams  rundock upstreams --watch: etcd put -> nginx sends the new instance a request;
#              reloads per burst of changes
#   deploy     rolling update of 2 instances under load (failed requests, time per host) and a
#              broken image, from the integration tests' FIGURE lines
#   go         go test -bench ./bench/ (in-process costs)
#
# BENCH_QUICK=1 runs fewer trials, sizes and shorter windows (a few minutes); the full run
# fits in 20 minutes on a 2-core machine (each section's time is printed in its heading). Each
# measuring program runs under a time bound (SECTION_TIMEOUT, seconds): a section that hangs
# writes a row saying so and the run goes on, so one stuck wait cannot eat the whole run. BENCH_ONLY="latency scale" runs some
# sections only (BENCHMARKS.md is then written with those sections alone).
# Everything runs on loopback: two etcd processes (Debian's etcd, temp data dirs), CoreDNS
# (~/go/bin/coredns), runsvdir on temp dirs, containers named rdbench-*; all are removed on
# exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

QUICK=${BENCH_QUICK:-0}
ONLY=${BENCH_ONLY:-converge latency footprint memory scale upstreams deploy go}
OUT=${BENCH_OUT:-$root/BENCHMARKS.md}
GOBIN=${GOBIN:-$(go env GOPATH)/bin}
# Each knob can be overridden from the environment, e.g. SCALE_SIZES="1000 10000".
if [ "$QUICK" = 1 ]; then
  d_cli="1 50 200 1000" d_mod="1 10" d_tpl="1 3" d_en=2 d_trials=10 d_kttl=5 d_lk=10
  d_fpw=90s d_ss=1000 d_sh=60s d_gbt=0.3s d_ut=10
else
  d_cli="1 50 200 1000" d_mod="1 10 50" d_tpl="1 5" d_en=5 d_trials=30 d_kttl=5,30 d_lk=30
  d_fpw=90s d_ss="1000 5000" d_sh=60s d_gbt=1s d_ut=30
fi
CONVERGE_CLI_SIZES=${CONVERGE_CLI_SIZES:-$d_cli}
CONVERGE_MODULE_SIZES=${CONVERGE_MODULE_SIZES:-$d_mod}
CONVERGE_TEMPLATE_SIZES=${CONVERGE_TEMPLATE_SIZES:-$d_tpl}
ENABLED_N=${ENABLED_N:-$d_en}
TRIALS=${TRIALS:-$d_trials}
KILL_TTLS=${KILL_TTLS:-$d_kttl}
LOOP_KILLS=${LOOP_KILLS:-$d_lk}
FOOTPRINT_WINDOW=${FOOTPRINT_WINDOW:-$d_fpw}
SCALE_SIZES=${SCALE_SIZES:-$d_ss}
SCALE_HOLD=${SCALE_HOLD:-$d_sh}
GO_BENCHTIME=${GO_BENCHTIME:-$d_gbt}
UPSTREAMS_TRIALS=${UPSTREAMS_TRIALS:-$d_ut}
MODULE_TASKS=${MODULE_TASKS:-30}
MODULE_REPS=${MODULE_REPS:-7}
CLI_REPS=${CLI_REPS:-11}
MODULE_EXTRA=${MODULE_EXTRA:-}
MEMORY_SIZES=${MEMORY_SIZES:-1,10,50}
MEMORY_IDLE=${MEMORY_IDLE:-5s}
SECTION_TIMEOUT=${SECTION_TIMEOUT:-600}

step() { printf '\n==> bench: %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
want() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
now_ms() { date +%s%3N; }
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

work=$(mktemp -d /tmp/rdbench.XXXXXX)
pids=()
NEED_DOCKER=1 # main says which sections need it
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$p" 2>/dev/null
  done
  # runsv children of the runsvdirs started here (runsvdir leaves them on TERM)
  for d in "$work"/enabled-*/service; do
    [ -d "$d" ] && for s in "$d"/*; do sv -w 15 down "$s" >/dev/null 2>&1; sv exit "$s" >/dev/null 2>&1; done
  done
  if [ "$NEED_DOCKER" = 1 ]; then
    ids=$(docker ps -aq --filter name='^/rdbench-' 2>/dev/null)
    [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_etcd() { # NAME -> sets ETCD_EP, ETCD_PID
  local name=$1 cport pport
  cport=$(freeport); pport=$(freeport)
  mkdir -p "$work/etcd-$name"
  etcd --name "$name" --data-dir "$work/etcd-$name/data" \
    --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "$name=http://127.0.0.1:$pport" --log-level error \
    >"$work/etcd-$name/log" 2>&1 &
  ETCD_PID=$!; pids+=("$ETCD_PID")
  ETCD_EP="http://127.0.0.1:$cport"
  for _ in $(seq 100); do
    curl -sf "$ETCD_EP/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "etcd $name did not start: $(tail -5 "$work/etcd-$name/log")"
}

start_coredns() { # ETCD_EP -> sets DNS_ADDR
  local port; port=$(freeport)
  mkdir -p "$work/coredns"
  printf 's.prod.example.com:%s {\n\tbind 127.0.0.1\n\tetcd {\n\t\tpath /skydns\n\t\tendpoint %s\n\t}\n}\n' \
    "$port" "$1" >"$work/coredns/Corefile"
  "$GOBIN/coredns" -conf "$work/coredns/Corefile" >"$work/coredns/log" 2>&1 &
  pids+=("$!")
  DNS_ADDR="127.0.0.1:$port"
  for _ in $(seq 100); do
    dig +time=1 +tries=1 -p "$port" @127.0.0.1 probe.s.prod.example.com A >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "CoreDNS did not start: $(tail -5 "$work/coredns/log")"
}

sections=()
section_t0=$(date +%s)
add_section() { # TITLE FILE: the section's time is from the end of the one before
  local took=$(($(date +%s) - section_t0))
  section_t0=$(date +%s)
  sections+=("$1 ($took s)|$2")
  printf '\n### %s (%d s)\n\n' "$1" "$took"
  cat "$2"
}

# bounded CMD...: CMD under SECTION_TIMEOUT seconds (TERM, then KILL 10 s later). A measuring
# program that hangs (a wait without a bound somewhere) prints a table row saying so, and the
# run goes on with the next section.
bounded() {
  local rc=0
  timeout -k 10 "$SECTION_TIMEOUT" "$@" || rc=$?
  case $rc in
    0) ;;
    124 | 137) echo "| $(basename "$1") did not finish within $SECTION_TIMEOUT s: stopped (see the run's log) | |"
       echo "bench: $1 did not finish within $SECTION_TIMEOUT s" >&2 ;;
    *) echo "| $(basename "$1") failed (exit $rc): see the run's log | |"
       echo "bench: $1 failed with exit $rc" >&2 ;;
  esac
}

# --- converge ---------------------------------------------------------------------------
# services_yaml N STATE SVDIR SERVICEDIR: N services in one rundock YAML file (services:)
services_yaml() {
  local n=$1 state=$2 sv=$3 svc=$4 i
  echo "services:"
  for i in $(seq 1 "$n"); do
    cat <<EOF
  - name: bench$i
    state: $state
    image: $IMAGE
    announce: $((20000 + i))
    announce_as: container
    port: 8080
    ttl: 30
    etcd_endpoints: [$ETCD_EP]
    log_dir: $work/log
    sv_dir: $sv
    service_dir: $svc
    bin_dir: $root/bin
EOF
  done
}

# ansible_vars N: the same services as Ansible variables
ansible_vars() {
  local n=$1 i
  echo "services:"
  for i in $(seq 1 "$n"); do echo "  - {name: bench$i, announce: $((20000 + i))}"; done
}

declare -A SECOND=() FIRST=() RUNNING=()
timed() { # OUTVAR CMD...: run CMD, its wall time in ms in OUTVAR; output to $work/last.log
  local __v=$1; shift
  local t0; t0=$(now_ms)
  "$@" >"$work/last.log" 2>&1 || { cat "$work/last.log" >&2; die "failed: $*"; }
  printf -v "$__v" '%s' $(($(now_ms) - t0))
}

# timed_median OUTVAR REPS CMD...: run CMD REPS times, the median wall time in ms in OUTVAR
timed_median() {
  local __v=$1 reps=$2 i t; shift 2
  local all=()
  for ((i = 0; i < reps; i++)); do timed t "$@"; all+=("$t"); done
  printf -v "$__v" '%s' "$(printf '%s\n' "${all[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
}

fmt_row() { # LABEL N FIRST_MS SECOND_MS TASKS_PER_SERVICE
  local label=$1 n=$2 a=$3 b=$4 tasks=$5
  awk -v l="$label" -v n="$n" -v a="$a" -v b="$b" -v t="$tasks" 'BEGIN {
    printf "| %s | %d | %.2f s | %.1f ms | %.3f s | %.2f ms | %.2f ms |\n", l, n, a/1000, a/n, b/1000, b/n, b/(n*t) }'
}

# make_templates: turn the tree rundock renders for one service into Jinja templates, so
# the baseline play writes the same bytes (checked below) and the comparison is fair.
make_templates() {
  local d=$work/tpl tree x
  mkdir -p "$d"
  services_yaml 1 present "$d/sv" "$d/service" | sed 's/bench1/tplbench/; s/20001/29999/' >"$d/one.yml"
  bin/rundock apply -f "$d/one.yml" >/dev/null
  tree=$d/sv/docker-tplbench
  (cd "$tree" && find . -mindepth 1 -type d ! -path '*/supervise*' | sed 's|^\./||' | sort) >"$d/dirs"
  (cd "$tree" && find . -type f ! -path '*/supervise*' | sed 's|^\./||' | sort) >"$d/files"
  {
    echo "dirs:"; sed 's/.*/  - "&"/' "$d/dirs"
    echo "files:"
    while read -r x; do
      printf '  - {path: "%s", mode: "0%s"}\n' "$x" "$(stat -c %a "$tree/$x")"
    done <"$d/files"
  } >"$d/layout.yml"
  while read -r x; do
    mkdir -p "$d/j2/$(dirname "$x")"
    # escape Jinja syntax already in the scripts (docker inspect -f '{{...}}'), then
    # put the per-service values back as variables
    sed -e 's/{{/@@LB@@/g; s/}}/@@RB@@/g; s/{%/@@LP@@/g; s/{#/@@LH@@/g' \
        -e "s/@@LB@@/{{ '{{' }}/g; s/@@RB@@/{{ '}}' }}/g; s/@@LP@@/{{ '{%' }}/g; s/@@LH@@/{{ '{#' }}/g" \
        -e 's/tplbench/{{ item.0.name }}/g; s/29999/{{ item.0.announce }}/g' \
        -e "s|$d/sv|{{ sv_dir }}|g; s|$d/service|{{ service_dir }}|g" \
        "$tree/$x" >"$d/j2/$x.j2"
  done <"$d/files"
  TPL_FILES=$(wc -l <"$d/files"); TPL_DIRS=$(wc -l <"$d/dirs")
}

write_playbooks() {
  cat >"$work/module-play.yml" <<EOF
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: rundock module, one task per service
      rundock:
        name: "{{ item.name }}"
        state: "{{ state }}"
        image: $IMAGE
        announce: "{{ item.announce }}"
        announce_as: container
        port: 8080
        ttl: 30
        etcd_endpoints: ["$ETCD_EP"]
        log_dir: $work/log
        sv_dir: "{{ sv_dir }}"
        service_dir: "{{ service_dir }}"
        bin_dir: $root/bin
      loop: "{{ services }}"
EOF
  cat >"$work/template-play.yml" <<EOF
- hosts: localhost
  connection: local
  gather_facts: false
  vars_files: [$work/tpl/layout.yml]
  tasks:
    - name: service directories
      ansible.builtin.file:
        path: "{{ sv_dir }}/docker-{{ item.0.name }}/{{ item.1 }}"
        state: directory
        mode: "0755"
      loop: "{{ services | product(dirs) | list }}"
    - name: service files, from the same scripts rundock renders
      ansible.builtin.template:
        src: "$work/tpl/j2/{{ item.1.path }}.j2"
        dest: "{{ sv_dir }}/docker-{{ item.0.name }}/{{ item.1.path }}"
        mode: "{{ item.1.mode }}"
      loop: "{{ services | product(files) | list }}"
    - name: link and start with community.general.runit
      community.general.runit:
        name: "{{ item }}"
        enabled: true
        state: started
        service_src: "{{ sv_dir }}"
        service_dir: "{{ service_dir }}"
      loop: "{{ services | map(attribute='name') | map('regex_replace', '^', 'docker-') | list }}"
      when: state == 'enabled'
EOF
  mkdir -p "$work/library"
  ln -sf "$root/bin/rundock" "$work/library/rundock"
}

playbook() { # LIBRARY ARGS...: ansible-playbook on localhost with modules from LIBRARY
  local lib=$1; shift
  ANSIBLE_LIBRARY="$lib" ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false \
    ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=false \
    ansible-playbook -i localhost, "$@"
}

run_play() { # PLAY N STATE SVDIR SERVICEDIR
  ansible_vars "$2" >"$work/vars-$2.yml"
  playbook "$work/library" "$work/$1" -e "@$work/vars-$2.yml" \
    -e "state=$3 sv_dir=$4 service_dir=$5"
}

# marginal: the cost of one more service, between the smallest and largest size of each
# way (this removes ansible-playbook's start-up, which dominates the 1-service rows).
marginal() {
  local how sizes lo hi label tasks
  echo
  echo "Marginal cost of one more service (between the smallest and the largest size; no start-up):"
  echo
  echo "| how | sizes | first run, per service | second run, per service | second run, per task |"
  echo "|---|---|---:|---:|---:|"
  for how in cli module template; do
    case $how in
      cli) sizes=$CONVERGE_CLI_SIZES; label="\`rundock apply -f\`"; tasks=1 ;;
      module) sizes=$CONVERGE_MODULE_SIZES; label="Ansible: \`rundock\` module"; tasks=1 ;;
      template) sizes=$CONVERGE_TEMPLATE_SIZES; label="Ansible: \`file\` + \`template\`"; tasks=$((TPL_DIRS + TPL_FILES)) ;;
    esac
    lo=$(echo "$sizes" | tr ' ' '\n' | sort -n | head -n1); hi=$(echo "$sizes" | tr ' ' '\n' | sort -n | tail -n1)
    [ "$lo" != "$hi" ] || continue
    awk -v l="$label" -v lo="$lo" -v hi="$hi" -v a1="${FIRST[$how,$lo]}" -v a2="${FIRST[$how,$hi]}" \
        -v b1="${SECOND[$how,$lo]}" -v b2="${SECOND[$how,$hi]}" -v t="$tasks" 'BEGIN {
      n = hi - lo
      printf "| %s | %d -> %d | %.1f ms | %.1f ms | %.1f ms |\n", l, lo, hi, (a2-a1)/n, (b2-b1)/n, (b2-b1)/(n*t) }'
  done
}

converge() {
  step "converge: rundock apply sizes $CONVERGE_CLI_SIZES; module $CONVERGE_MODULE_SIZES; template play $CONVERGE_TEMPLATE_SIZES"
  local f="$work/converge.md" n d a b
  {
    echo "Files only (\`state: present\`: render and write the runit trees, no supervision started)."
    echo "Per-task = second run / (services x tasks per service); rundock is one task per service."
    echo "\`rundock apply -f\`'s second run is the median of $CLI_REPS runs in a row after the first (its first run also records the trees in sv_dir's index, see README: How apply works); the Ansible rows' second run is one run."
    echo "Ansible copies a binary module to the target for every task: here $(du -m bin/rundock | cut -f1) MiB (bin/rundock), on a local connection."
    echo
    echo "| how | services | first run | per service | second run (no change) | per service | per task (2nd) |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
  } >"$f"
  for n in $CONVERGE_CLI_SIZES; do
    d="$work/cli-$n"; mkdir -p "$d"
    services_yaml "$n" present "$d/sv" "$d/service" >"$d/services.yml"
    timed a bin/rundock apply -f "$d/services.yml"
    timed_median b "$CLI_REPS" bin/rundock apply -f "$d/services.yml"
    SECOND[cli,$n]=$b; FIRST[cli,$n]=$a
    fmt_row "\`rundock apply -f\` (CLI, one process)" "$n" "$a" "$b" 1 >>"$f"
  done
  make_templates
  write_playbooks
  for n in $CONVERGE_MODULE_SIZES; do
    d="$work/mod-$n"
    timed a run_play module-play.yml "$n" present "$d/sv" "$d/service"
    timed b run_play module-play.yml "$n" present "$d/sv" "$d/service"
    grep -q 'changed=0' "$work/last.log" || echo "bench: note: rundock module second run reported changes (n=$n)" >&2
    fmt_row "Ansible: \`rundock\` binary module" "$n" "$a" "$b" 1 >>"$f"
    SECOND[module,$n]=$b; FIRST[module,$n]=$a
  done
  for n in $CONVERGE_TEMPLATE_SIZES; do
    d="$work/tplplay-$n"
    timed a run_play template-play.yml "$n" present "$d/sv" "$d/service"
    timed b run_play template-play.yml "$n" present "$d/sv" "$d/service"
    grep -q 'changed=0' "$work/last.log" || echo "bench: note: template play second run reported changes (n=$n)" >&2
    fmt_row "Ansible: \`file\` + \`template\` play ($TPL_DIRS dirs + $TPL_FILES files per service)" "$n" "$a" "$b" $((TPL_DIRS + TPL_FILES)) >>"$f"
    SECOND[template,$n]=$b; FIRST[template,$n]=$a
    # the same services through the module, to compare the trees byte for byte
    [ -d "$work/mod-$n/sv" ] || run_play module-play.yml "$n" present "$work/mod-$n/sv" "$work/mod-$n/service" >/dev/null 2>&1
    if same_trees "$work/mod-$n" "$d" sv >"$work/tpl-diff" 2>&1; then
      echo "same" >"$work/tpl-same"
    else
      echo "different" >"$work/tpl-same"
      echo "bench: note: the template play's trees differ from rundock's:" >&2; head -20 "$work/tpl-diff" >&2
    fi
  done
  {
    echo
    if [ "$(cat "$work/tpl-same" 2>/dev/null)" = same ]; then
      echo "The template play wrote byte-identical trees to the rundock module's (\`diff -r\` with each tree's own directory replaced by ROOT: the scripts name their sv_dir), so both rows do the same work."
    else
      echo "The template play's trees were NOT byte-identical to rundock's (see the run's log)."
    fi
  } >>"$f"
  marginal >>"$f"
  [ "$ENABLED_N" -gt 0 ] && converge_enabled
  echo >>"$f"
  module_cost >>"$f"
  add_section "Converge" "$f"
}

# same_trees A B SUB: diff -r of A/SUB and B/SUB with each side's own root (A, B) replaced
# by ROOT in copies: the run scripts name their sv_dir and service_dir (state dir, drain
# paths), which differ between two runs in two directories and are not what is compared.
same_trees() {
  local a=$1 b=$2 sub=$3 t
  t=$(mktemp -d "$work/same.XXXXXX")
  cp -a "$a/$sub" "$t/a"; cp -a "$b/$sub" "$t/b"
  # rundock's lock and index (stats of its trees) are not part of the trees
  rm -f "$t/a/.rundock.lock" "$t/a/.rundock.index" "$t/b/.rundock.lock" "$t/b/.rundock.index"
  find "$t/a" -type f -exec sed -i "s|$a|ROOT|g" {} +
  find "$t/b" -type f -exec sed -i "s|$b|ROOT|g" {} +
  diff -r "$t/a" "$t/b"
  local rc=$?
  rm -rf "$t"
  return $rc
}

# --- module cost ------------------------------------------------------------------------
# module_cost: what one task of the rundock module costs beside a trivial Go binary module
# (bench/module/trivial, which reads its args file and prints {"changed": false}) and
# ansible.builtin.ping (Python), in one run: a play of MODULE_TASKS tasks of each (one task
# looped, as the converge rows are), the rundock one on an unchanged present service, run
# MODULE_REPS times in turn with an empty play; per task = (median play - median empty
# play) / MODULE_TASKS. MODULE_EXTRA="LABEL=PATH ..." adds rows for other rundock binaries
# (e.g. main's build) in the same run. Prints the table on stdout.
module_cost() {
  local d=$work/modcost n=$MODULE_TASKS r k t
  step "module: $MODULE_TASKS tasks x $MODULE_REPS runs: trivial binary module, rundock module, ping, empty play"
  # not $d/library: Ansible takes a library/ beside the playbook before ANSIBLE_LIBRARY, so
  # every play would run that one's rundock
  mkdir -p "$d/lib-main"
  # built as make build builds bin/rundock, so the two binaries differ in their code alone
  CGO_ENABLED=0 go build -trimpath -ldflags "$BUILD_LDFLAGS" -o "$d/lib-main/trivial" ./bench/module/trivial
  ln -sf "$root/bin/rundock" "$d/lib-main/rundock"
  # the small module that execs bin_dir's rundock (cmd/rundock-module), as the module of its
  # own library directory: the same play, the rundock in $root/bin doing the work
  mkdir -p "$d/lib-shim"
  ln -sf "$root/bin/rundock-module" "$d/lib-shim/rundock"
  {
    echo "- hosts: localhost"
    echo "  connection: local"
    echo "  gather_facts: false"
    echo "  tasks: []"
  } >"$d/empty.yml"
  for k in trivial trivialargs rundock ping; do
    sed 's/tasks: \[\]/tasks:/' "$d/empty.yml" >"$d/$k.yml"
    echo "    - name: $k, one task per item" >>"$d/$k.yml"
    case $k in
      trivial) echo "      trivial: {}" ;;
      ping) echo "      ansible.builtin.ping: {}" ;;
      rundock | trivialargs)
        # trivialargs: the trivial module given the rundock task's arguments, which it
        # ignores; Ansible's own work on a task's arguments is then the same on both sides
        echo "      ${k%args}:"
        cat <<EOF
        name: modcost
        state: present
        image: $IMAGE
        announce: 29998
        announce_as: container
        port: 8080
        ttl: 30
        etcd_endpoints: ["$ETCD_EP"]
        log_dir: $d/log
        sv_dir: $d/sv
        service_dir: $d/service
        bin_dir: $root/bin
EOF
        ;;
    esac >>"$d/$k.yml"
    echo "      loop: \"{{ range($n) | list }}\"" >>"$d/$k.yml"
  done
  modrun rundock >"$d/install.log" 2>&1 || { cat "$d/install.log" >&2; die "the rundock module play failed"; }
  # MODULE_EXTRA="LABEL=PATH ...": more rundock binaries to time in the same run (an older
  # build, another branch's), each as the module of its own library directory
  local kinds="empty trivial trivialargs rundock shim ping" x
  for x in $MODULE_EXTRA; do
    mkdir -p "$d/extra-${x%%=*}"; ln -sf "$(realpath "${x#*=}")" "$d/extra-${x%%=*}/rundock"
    kinds+=" x-${x%%=*}"
  done
  # wall and CPU (user + system, ansible-playbook and its children) of each run: the CPU
  # figures hold up better on a loaded machine
  local TIMEFORMAT='%3R %3U %3S'
  for r in $(seq 1 "$MODULE_REPS"); do
    for k in $kinds; do
      { time modrun "$k" >"$work/last.log" 2>&1 || touch "$d/failed"; } 2>>"$d/$k.times"
      [ -e "$d/failed" ] && { cat "$work/last.log" >&2; die "the $k play failed"; }
      case $k in rundock | shim | x-*) grep -q 'changed=0' "$work/last.log" || echo "bench: note: $k reported changes on an unchanged service" >&2 ;; esac
    done
  done
  local -A wall=() cpu=()
  for k in $kinds; do
    wall[$k]=$(awk '{print $1 * 1000}' "$d/$k.times" | median); cpu[$k]=$(awk '{print ($2 + $3) * 1000}' "$d/$k.times" | median)
  done
  echo "Per-task cost of a binary module: a play of $n tasks of each (one task looped over $n items), the"
  echo "rundock one on an unchanged \`state: present\` service; $MODULE_REPS runs of each in turn with an empty play;"
  echo "per task = (median play - median empty play) / $n, in wall time and in CPU time (user + system of"
  echo "ansible-playbook and all it runs). Both binaries are built with \`make build\`'s flags. The ratios are to the"
  echo "trivial module given the same arguments as the rundock task (which it ignores), so both hand Ansible the"
  echo "same task; the row without arguments shows what those arguments cost Ansible."
  echo
  echo "| module | per task | vs trivial | CPU per task | vs trivial | binary |"
  echo "|---|---:|---:|---:|---:|---:|"
  for k in $kinds; do
    local label size=""
    case $k in
      empty) continue ;;
      trivial) label="trivial Go binary module (bench/module/trivial), no arguments"; size=$(stat -c %s "$d/lib-main/trivial") ;;
      trivialargs) label="trivial Go binary module, the rundock task's arguments (the base)"; size=$(stat -c %s "$d/lib-main/trivial") ;;
      rundock) label="\`rundock\` module, unchanged service"; size=$(stat -L -c %s "$d/lib-main/rundock") ;;
      shim) label="\`rundock-module\` (execs the installed rundock), unchanged service"; size=$(stat -L -c %s "$d/lib-shim/rundock") ;;
      ping) label="\`ansible.builtin.ping\` (Python)" ;;
      x-*) label="\`rundock\` module, ${k#x-}"; size=$(stat -L -c %s "$d/extra-${k#x-}/rundock") ;;
    esac
    awk -v l="$label" -v n="$n" -v w="${wall[$k]}" -v c="${cpu[$k]}" -v we="${wall[empty]}" -v ce="${cpu[empty]}" \
        -v wt="${wall[trivialargs]}" -v ct="${cpu[trivialargs]}" -v size="$size" 'BEGIN {
      printf "| %s | %.1f ms | %.2fx | %.1f ms | %.2fx | %s |\n", l, (w-we)/n, (w-we)/(wt-we), (c-ce)/n, (c-ce)/(ct-ce), size == "" ? "" : sprintf("%.1f MiB", size/1048576) }'
  done
  echo
  echo "The empty play: ${wall[empty]} ms, ${cpu[empty]} ms CPU."
}

# modrun KIND: one of module_cost's plays (x-LABEL: the rundock play with MODULE_EXTRA's LABEL)
modrun() {
  case $1 in
    x-*) playbook "$work/modcost/extra-${1#x-}" "$work/modcost/rundock.yml" ;;
    shim) playbook "$work/modcost/lib-shim" "$work/modcost/rundock.yml" ;;
    *) playbook "$work/modcost/lib-main" "$work/modcost/$1.yml" ;;
  esac
}

# median: the median of the numbers on stdin, one a line
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }


# converge_enabled: the same with supervision: state enabled against a real runsvdir, the
# containers started (rundock: link + wait for runsv; the play: community.general.runit
# enabled + started). Small N: every service starts a real container.
converge_enabled() {
  local n=$ENABLED_N f="$work/converge.md" d a b
  {
    echo
    echo "Enabled and supervised (\`state: enabled\`, real runsvdir, $n real containers started):"
    echo
    echo "| how | services | first run | per service | second run (no change) | per service | per task (2nd) |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
  } >>"$f"
  for how in cli module template; do
    d="$work/enabled-$how"; mkdir -p "$d/sv" "$d/service"
    runsvdir "$d/service" >/dev/null 2>&1 &
    pids+=("$!")
    local rsd=$!
    case $how in
      cli)
        services_yaml "$n" enabled "$d/sv" "$d/service" | sed "s/name: bench/name: rdbench-$how-/" >"$d/services.yml"
        timed a bin/rundock apply -f "$d/services.yml"
        timed b bin/rundock apply -f "$d/services.yml"
        fmt_row "\`rundock apply -f\` (CLI)" "$n" "$a" "$b" 1 >>"$f" ;;
      module)
        timed a run_enabled module-play.yml "$n" "$d"
        timed b run_enabled module-play.yml "$n" "$d"
        fmt_row "Ansible: \`rundock\` binary module" "$n" "$a" "$b" 1 >>"$f" ;;
      template)
        timed a run_enabled template-play.yml "$n" "$d"
        timed b run_enabled template-play.yml "$n" "$d"
        fmt_row "Ansible: \`file\` + \`template\` + \`community.general.runit\`" "$n" "$a" "$b" $((TPL_DIRS + TPL_FILES + 1)) >>"$f" ;;
    esac
    # the services start their containers on their own: give them up to 30 s
    local waited=0 running=0
    while :; do
      running=$(docker ps -q --filter "name=^/rdbench-$how-" | wc -l)
      [ "$running" -ge "$n" ] || [ "$waited" -ge 30 ] && break
      sleep 1; waited=$((waited + 1))
    done
    echo "bench: enabled/$how: $running of $n containers running ${waited}s after the second run" >&2
    RUNNING[$how]="$running of $n running ${waited} s after the second run"
    # teardown, not measured: without control/t (which withdraws the record and waits out
    # the drain, 30 s a service with these settings) runsv stops each at once
    rm -f "$d/sv"/*/control/t
    sv -w 30 down "$d/service"/* >/dev/null 2>&1 || true
    kill "$rsd" 2>/dev/null || true
    for s in "$d/service"/*; do sv exit "$s" >/dev/null 2>&1 || true; done
    ids=$(docker ps -aq --filter "name=^/rdbench-$how-"); [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1 || true
  done
  echo >>"$f"
  {
    echo "Containers: CLI ${RUNNING[cli]:-?}; module ${RUNNING[module]:-?}; template play ${RUNNING[template]:-?}."
    echo "\`rundock\` returns once runsv has picked each service up (runsvdir scans every 5 s); the runit module returns after \`sv start\`."
  } >>"$f"
}

run_enabled() { # PLAY N DIR: Ansible run with container names rdbench-HOW-i
  local vars="$work/vars-en-$2.yml"
  ansible_vars "$2" | sed "s/name: bench/name: rdbench-$how-/" >"$vars"
  playbook "$work/library" "$work/$1" -e "@$vars" -e "state=enabled sv_dir=$3/sv service_dir=$3/service"
}

# --- latency ----------------------------------------------------------------------------
latency() {
  step "latency: $TRIALS trials per row (announcer vs timer loop)"
  local f="$work/latency.md"
  {
    echo "Announcer: \`bin/announcer\` as a process, --ttl 5 unless stated, following a container by name."
    echo "Timer loop: \`bench/baseline/announce-loop.sh\` (PUT with a fresh 60 s lease every 45 s, like the 2014 loop)."
    echo "Times from the Docker API call / signal to the etcd watch event, or to the first CoreDNS answer (5 ms polls)."
    echo
    echo "| what | p50 | p95 | max | n |"
    echo "|---|---:|---:|---:|---:|"
    bounded "$work/bin/latency" -announcer bin/announcer -loop bench/baseline/announce-loop.sh \
      -endpoint "$ETCD_EP" -dns "$DNS_ADDR" -image "$IMAGE" -trials "$TRIALS" \
      -kill-ttls "$KILL_TTLS" -loop-kills "$LOOP_KILLS"
  } >"$f"
  add_section "Announce and withdraw latency" "$f"
}

# --- footprint --------------------------------------------------------------------------
footprint() {
  step "footprint: idle window $FOOTPRINT_WINDOW"
  local f="$work/footprint.md" ep_a=$ETCD_EP ep_b
  local save_ep=$ETCD_EP save_pid=$ETCD_PID
  start_etcd loop; ep_b=$ETCD_EP
  ETCD_EP=$save_ep; ETCD_PID=$save_pid
  {
    echo "Window: $FOOTPRINT_WINDOW idle (the issue asks for 10 minutes; per-minute figures are scaled from the window)."
    echo "Each runs against its own etcd, so each etcd's gRPC message counters count that client alone."
    echo
    echo "| who | RSS end / max | CPU per minute | CPU (% of one core) | etcd requests per minute (by method) | window |"
    echo "|---|---:|---:|---:|---|---:|"
    bounded "$work/bin/footprint" -announcer bin/announcer -loop bench/baseline/announce-loop.sh \
      -endpoint-announcer "$ep_a" -endpoint-loop "$ep_b" -image "$IMAGE" -window "$FOOTPRINT_WINDOW"
    echo
    echo "Where the timer loop wins, and why: its resident process is a bash (a few MiB) while the announcer is a"
    echo "Go program holding an etcd connection (HTTP/2, a watch open) and a Docker events stream; and it sends fewer etcd requests:"
    echo "one grant + one put per 45 s against one keep-alive per TTL/3 (10 s at the default --ttl 30). That is the"
    echo "price of what the latency rows show: records that follow the container and vanish within the TTL."
  } >"$f"
  add_section "Footprint" "$f"
}

# --- memory -----------------------------------------------------------------------------
memory() {
  step "memory: N announcers / timer loops on one host, sizes $MEMORY_SIZES"
  local f="$work/memory.md"
  go build -o "$work/bin/memory" ./bench/memory
  {
    echo "N processes of each kind on this host, idle ${MEMORY_IDLE} after all N records are in etcd; per process the"
    echo "median of /proc/PID/smaps_rollup's Rss, Pss and Private_Clean + Private_Dirty (bench/memory). RSS counts the"
    echo "shared binary once per process; PSS shares it among the N (the PSS of all N is what they cost together);"
    echo "private is what one more process costs (at N = 1 it includes the whole binary, which nothing shares)."
    echo "Announcers: \`bin/announcer\` with the flags and environment of its rendered run script (--ttl 30, --state-dir),"
    echo "each following its own container through a fake Docker Engine API on a unix socket (ping, inspect of a"
    echo "running container, an events stream that stays open), against one etcd started for the section."
    echo "Timer loops: \`bench/baseline/announce-loop.sh\`: the bash and its sleep (its etcdctl runs are over by then)."
    echo "Registrator (one process for the whole host) held 13 MiB RSS in a separate side-by-side run (not reproduced here)."
    echo
    bounded "$work/bin/memory" -announcer bin/announcer -loop bench/baseline/announce-loop.sh -sizes "$MEMORY_SIZES" -idle "$MEMORY_IDLE"
  } >"$f"
  add_section "Memory of N announcers on one host" "$f"
}

# --- scale ------------------------------------------------------------------------------
scale() {
  step "scale: sizes $SCALE_SIZES, hold $SCALE_HOLD each"
  local f="$work/scale.md" n
  {
    echo "N announcers (internal/announce, the announcer's own code) in one process, each with its own etcd"
    echo "client: N HTTP/2 connections, each renewing its lease every TTL/3, as N processes would. --ttl 30"
    echo "(keep-alive every 10 s). One Debian etcd 3.4 on loopback, fresh data dir per size."
    echo "Keep-alive latency: a probe client's KeepAliveOnce round trips, 10 per second, during the hold."
    echo "All stop at once: every announcer withdraws (delete + revoke) at the same moment (a mass stop on"
    echo "one etcd, the worst case); an announcer that cannot finish within its shutdown budget leaves"
    echo "its record to expire with the lease (within the TTL)."
    echo
    echo "| N | announced (etcd retries) | ramp-up | leases lost / etcd errors (hold) | records at end | keep-alive p50 / p95 / p99 / max | etcd CPU ramp / hold | etcd RSS max | bench RSS per announcer | all stop at once | strain |"
    echo "|---:|---:|---:|---|---:|---|---:|---:|---:|---|---|"
  } >"$f"
  # start_etcd sets ETCD_EP and ETCD_PID: the main etcd's come back after the section (the
  # upstreams section after this one hung, then failed, on the scale etcd it was left with)
  local save_ep=$ETCD_EP save_pid=$ETCD_PID
  for n in $SCALE_SIZES; do
    start_etcd "scale$n"
    bounded "$work/bin/scale" -endpoints "$ETCD_EP" -etcd-pid "$ETCD_PID" -n "$n" -hold "$SCALE_HOLD" >>"$f"
    kill "$ETCD_PID"; wait "$ETCD_PID" 2>/dev/null || true
  done
  ETCD_EP=$save_ep; ETCD_PID=$save_pid
  add_section "Scale" "$f"
}

# --- upstreams --------------------------------------------------------------------------
upstreams() {
  step "upstreams: rundock upstreams --watch in front of nginx, $UPSTREAMS_TRIALS lone changes, bursts of 50"
  local f="$work/upstreams.md"
  {
    echo "\`rundock upstreams --watch\` (default --debounce 200ms --max-delay 2s) with a real nginx on loopback,"
    echo "fed from the main etcd. A lone change: put a new instance's record (a loopback HTTP backend), then"
    echo "time until the reload command returned and until nginx sent that backend its first request while a"
    echo "client polls nginx every 1 ms; the previous trial's record is deleted and left to settle first."
    echo "A burst: 50 records put evenly over 2 s, reloads counted until the renderer settles. bench/upstreams."
    echo "The bar (a separate side-by-side run, not reproduced here): confd's etcdv3 watch, 59 ms p50 for a lone"
    echo "change and one reload per change in a burst."
    echo
    echo "| what | p50 | p95 | max | n | reloads |"
    echo "|---|---:|---:|---:|---:|---|"
    bounded "$work/bin/upstreams" -rundock bin/rundock -endpoint "$ETCD_EP" -trials "$UPSTREAMS_TRIALS"
  } >"$f"
  add_section "Upstreams: record to nginx" "$f"
}

# --- deploy -----------------------------------------------------------------------------
# The deploy figures come from the integration tests that assert them (real runit, Docker,
# etcd, CoreDNS, nginx): their FIGURE lines become rows.
deploy() {
  step "deploy: go test -run 'TestDeploy_(RollingUpdate|BrokenImage)|TestStartFirst_(NewImage|BrokenImage)' ./integration/"
  local f="$work/deploy.md" log="$work/deploy.log"
  if ! go test -count=1 -timeout 15m -run 'TestDeploy_(RollingUpdate|BrokenImage)$|TestStartFirst_(NewImage|BrokenImage)$' -v ./integration/ >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "| deploy tests failed: see the log | |" >"$f"
  fi
  step "deploy: go test -run 'TestMultiHost/(Baseline|RundockChain|RollingUpdate)' ./integration/"
  if ! go test -count=1 -timeout 10m -run 'TestMultiHost$/^(Baseline|RundockChain|RollingUpdate)$' -v ./integration/ >>"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "| multi-host rolling update failed: see the log | |" >>"$f"
  fi
  {
    echo "Two instances of one service behind \`rundock upstreams\` (nginx) and a CoreDNS-resolving client that caches"
    echo "answers for their TTL (2 s), each sending requests in a loop with no retries while rundock applies a new"
    echo "image to one instance, then the other (integration/deploy_test.go, TestDeploy_RollingUpdate; the"
    echo "broken image: TestDeploy_BrokenImage), stop-first. Then one instance alone with update: start-first, the same"
    echo "load, a new image and a broken one, and the same single-instance update stop-first for comparison"
    echo "(integration/startfirst_test.go). Last, two hosts of the multi-host lab updated one after the other,"
    echo "start-first each, under load through nginx fed from the lab's 3-member etcd, and a broken image that stops"
    echo "the roll at the first host (integration/multihost_test.go, TestMultiHost/RollingUpdate)."
    echo
    echo "| figure |"
    echo "|---|"
    sed -n 's/^.*FIGURE \(.*\)$/| \1 |/p' "$log"
  } >>"$f"
  add_section "Deploys under load" "$f"
}

# --- go benchmarks ----------------------------------------------------------------------
gobench() {
  step "go test -bench ./bench/"
  local f="$work/go.md"
  {
    echo '```'
    go test -run '^$' -bench . -benchmem -benchtime "$GO_BENCHTIME" -count 1 ./bench/ | grep -E '^(Benchmark|goos|goarch|cpu)'
    echo '```'
  } >"$f"
  add_section "In-process costs (go test -bench)" "$f"
}

# --- run --------------------------------------------------------------------------------
# Everything runs from main, so bash has parsed the whole file before anything runs (an
# edit to this file during a run cannot change the run).
main() {
  # module and go alone need neither Docker nor the runit collection
  local s
  NEED_DOCKER=0
  for s in converge latency footprint scale upstreams deploy; do want "$s" && NEED_DOCKER=1; done
  if [ "$NEED_DOCKER" = 1 ]; then
    bash scripts/setup-bench.sh
  else
    for s in etcd ansible-playbook curl; do command -v "$s" >/dev/null 2>&1 || die "$s is missing: run 'make setup' first"; done
  fi
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  step "build"
  make -s build
  # the flags make build links bin/rundock with (module_cost builds its trivial module so)
  BUILD_LDFLAGS=$(make -s -n build | sed -n "s|.*-ldflags '\([^']*\)'.*cmd/rundock\$|\1|p")
  mkdir -p "$work/bin"
  for p in scale latency footprint upstreams; do go build -o "$work/bin/$p" "./bench/$p"; done
  IMAGE=rundock-echo:bench
  [ "$NEED_DOCKER" = 1 ] && bash examples/images/build.sh "$IMAGE" >/dev/null
  started=$(date -u +'%Y-%m-%d %H:%M UTC')
  t_start=$(now_ms)
  section_t0=$(date +%s)
  # the main etcd: latency rows, footprint (announcer side), and the enabled converge
  # services' announcers
  start_etcd main
  [ "$NEED_DOCKER" = 1 ] && start_coredns "$ETCD_EP"
  want converge && converge
  if want module && ! want converge; then
    module_cost >"$work/module.md"
    add_section "Converge: module cost" "$work/module.md"
  fi
  want latency && latency
  want footprint && footprint
  want memory && memory
  want scale && scale
  want upstreams && upstreams
  want deploy && deploy
  want go && gobench
  elapsed=$(( ($(now_ms) - t_start) / 1000 ))
  # before the write below: it truncates BENCHMARKS.md first, which would make the tree dirty
  local desc; desc=$(git describe --always --dirty)

  {
    echo "# rundock benchmarks"
    echo
    echo "Written by \`make bench\` (scripts/bench.sh$([ "$QUICK" = 1 ] && echo ", BENCH_QUICK=1: reduced trials, sizes and windows")) on $started; the run took ${elapsed} s."
    echo "All rows come from this one run on this one machine, so compare rows, not absolute values."
    echo
    echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
    echo "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr), $(. /etc/os-release && echo "$PRETTY_NAME")."
    if [ "$NEED_DOCKER" = 1 ]; then
      echo "Docker $(docker version --format '{{.Server.Version}}'), $(etcd --version | sed -n 1p), $("$GOBIN/coredns" -version | sed -n 1p),"
    else
      echo "$(etcd --version | sed -n 1p),"
    fi
    echo "$(ansible --version | sed -n 1p), $(go version | cut -d' ' -f3), rundock $desc."
    echo "Command: \`$([ "$QUICK" = 1 ] && echo "BENCH_QUICK=1 ")$([ -n "${BENCH_ONLY:-}" ] && echo "BENCH_ONLY=\"$ONLY\" ")make bench\`."
    for s in "${sections[@]}"; do
      printf '\n## %s\n\n' "${s%%|*}"
      cat "${s#*|}"
    done
  } >"$OUT"
  step "wrote $OUT"
}

# one line: bash reads it whole before running it
main "$@"; exit $?
