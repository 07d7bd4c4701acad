#!/usr/bin/env bash
# demo.sh runs rundock's whole chain on this machine, on loopback only:
#   rundock -> runit -> Docker -> announcer -> etcd -> CoreDNS -> rundock upstreams -> nginx
# Usage: scripts/demo.sh        run the demo, print what it shows, tear down
#        DEMO_KEEP=1 scripts/demo.sh   leave it running (stop with: scripts/demo.sh down)
#        scripts/demo.sh down   tear down whatever a demo left
# Ctrl-C at any point tears everything down. Ports can be moved with DEMO_ETCD_PORT,
# DEMO_DNS_PORT, DEMO_HTTP_PORT (the upstream approach), DEMO_RESOLVER_PORT (nginx 1.22's
# resolver approach) and DEMO_FRONTEND_PORT (the frontend, through its upstream).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
demo=${DEMO_DIR:-$root/.demo}
bin=${DEMO_BIN:-$root/bin}
etcd_port=${DEMO_ETCD_PORT:-2379}
peer_port=${DEMO_ETCD_PEER_PORT:-2380}
dns_port=${DEMO_DNS_PORT:-1053}
http_port=${DEMO_HTTP_PORT:-8080}
resolver_port=${DEMO_RESOLVER_PORT:-8081}
frontend_port=${DEMO_FRONTEND_PORT:-8082}
zone=s.prod.example.com
endpoint=http://127.0.0.1:$etcd_port
image=rundock-echo:demo
services=(backend-a backend-b frontend)
declare -A host=([backend-a]=127.0.0.2 [backend-b]=127.0.0.3 [frontend]=127.0.0.1)

n=0
bold='' plain=''
if [ -t 1 ]; then bold=$(printf '\033[1m') plain=$(printf '\033[0m'); fi
step() { n=$((n + 1)); current="$*"; printf '\n%s[%d] %s%s\n' "$bold" "$n" "$*" "$plain"; }
info() { printf '    %s\n' "$*"; }
fail() { printf '\ndemo: step %d (%s) failed: %s\n' "$n" "${current:-setup}" "$*" >&2; exit 1; }

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || fail "$what: not after ${secs}s"
    sleep 0.2
  done
}

down() {
  set +e
  [ -d "$demo" ] && touch "$demo/load.stop"
  if [ -d "$demo/service" ]; then
    for s in "$demo"/service/*; do [ -e "$s" ] && sv -w 20 down "$s" >/dev/null 2>&1; done
    for s in "$demo"/sv/*/ "$demo"/sv/*/announcer/ "$demo"/sv/*/log/ "$demo"/sv/*/announcer/log/; do
      [ -d "$s/supervise" ] && sv exit "$s" >/dev/null 2>&1
    done
  fi
  for p in load runsvdir nginx coredns etcd upstreams; do
    [ -f "$demo/$p.pid" ] && kill "$(cat "$demo/$p.pid")" 2>/dev/null
  done
  sleep 0.5
  for p in load runsvdir nginx coredns etcd upstreams; do
    [ -f "$demo/$p.pid" ] && kill -9 "$(cat "$demo/$p.pid")" 2>/dev/null
    rm -f "$demo/$p.pid"
  done
  # runsvdir -P leaves its runsv children behind when it exits; they, and what they run
  # (announcer, docker CLI, svlogd), have their cwd in the demo's service tree.
  for d in /proc/[0-9]*; do
    case "$(readlink "$d/cwd" 2>/dev/null)" in "$demo"/*) kill -9 "${d#/proc/}" 2>/dev/null ;; esac
  done
  for s in "${services[@]}"; do docker rm -f "$s" "$s.next" >/dev/null 2>&1; done
  rm -rf "$demo"
  set -e
}

if [ "${1:-}" = down ]; then
  down
  echo "demo: torn down (no containers, no processes, $demo removed)"
  exit 0
fi

for c in "$bin/rundock" "$bin/announcer"; do [ -x "$c" ] || fail "$c missing: run 'make build' (or 'make demo')"; done
for c in etcd runsvdir sv nginx dig docker curl; do command -v "$c" >/dev/null || fail "$c missing: run 'make setup'"; done
coredns=$(command -v coredns || echo "$(go env GOPATH)/bin/coredns")
[ -x "$coredns" ] || fail "coredns missing: run 'make setup'"

down # a previous demo's leftovers
mkdir -p "$demo"/{sv,service,log,etcd,nginx,services}
if [ "${DEMO_KEEP:-0}" = 1 ]; then
  trap 'echo; echo "demo: interrupted, tearing down"; down; exit 130' INT TERM
else
  trap 'rc=$?; echo; echo "demo: tearing down"; down; exit $rc' EXIT
  trap 'exit 130' INT TERM
fi

step "etcd on $endpoint (Debian's etcd-server)"
etcd --name demo --data-dir "$demo/etcd" \
  --listen-client-urls "$endpoint" --advertise-client-urls "$endpoint" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "demo=http://127.0.0.1:$peer_port" >"$demo/etcd.log" 2>&1 &
echo $! >"$demo/etcd.pid"
wait_for 20 "etcd health" env ETCDCTL_API=3 etcdctl --endpoints "$endpoint" endpoint health
info "healthy"

step "CoreDNS on 127.0.0.1:$dns_port, zone $zone from etcd"
cat >"$demo/Corefile" <<COREFILE
$zone:$dns_port {
	bind 127.0.0.1
	etcd {
		path /skydns
		endpoint $endpoint
	}
}
COREFILE
"$coredns" -conf "$demo/Corefile" >"$demo/coredns.log" 2>&1 &
echo $! >"$demo/coredns.pid"
wait_for 20 "CoreDNS answering" dig @127.0.0.1 -p "$dns_port" +short +time=1 +tries=1 "$zone" SOA
info "answering"

step "runsvdir on $demo/service"
runsvdir -P "$demo/service" >"$demo/runsvdir.log" 2>&1 &
echo $! >"$demo/runsvdir.pid"
info "pid $(cat "$demo/runsvdir.pid")"

step "build the demo image locally ($image, no registry)"
"$root/examples/images/build.sh" "$image" >/dev/null || fail "cannot build $image"
info "$image built"

step "rundock apply -f examples/demo (backend x2, frontend)"
for s in "${services[@]}"; do
  { cat "$root/examples/demo/$s.yml"; cat <<LOCAL

# demo-local: everything under $demo, everything on loopback
host: ${host[$s]}
sv_dir: $demo/sv
service_dir: $demo/service
log_dir: $demo/log
bin_dir: $bin
etcd_endpoints: [$endpoint]
LOCAL
  } >"$demo/services/$s.yml"
done
"$bin/rundock" apply -f "$demo/services" || fail "rundock apply failed"
for s in "${services[@]}"; do
  wait_for 30 "container $s running" sh -c "docker inspect -f '{{.State.Running}}' $s | grep -q true"
done
"$bin/rundock" status --sv-dir "$demo/sv" --service-dir "$demo/service" || true

step "DNS answers from the announced records (CoreDNS)"
dig_short() { dig @127.0.0.1 -p "$dns_port" +short +time=1 +tries=1 "$@"; }
wait_for 30 "two backend A records" sh -c "[ \$(dig @127.0.0.1 -p $dns_port +short backend.$zone A | wc -l) -eq 2 ]"
wait_for 30 "frontend A record" sh -c "dig @127.0.0.1 -p $dns_port +short frontend.$zone A | grep -q ."
info "backend.$zone A:";   dig_short "backend.$zone" A   | sed 's/^/      /'
info "backend.$zone SRV:"; dig_short "backend.$zone" SRV | sed 's/^/      /'
info "frontend.$zone SRV (host port 8087, container port 3000):"; dig_short "frontend.$zone" SRV | sed 's/^/      /'

step "nginx upstreams rendered from the records (rundock upstreams), nginx on 127.0.0.1:$http_port"
cat >"$demo/nginx/nginx.conf" <<NGINX
worker_processes 1;
error_log $demo/nginx/error.log;
pid $demo/nginx.pid;
events { worker_connections 256; }
http {
	access_log $demo/nginx/access.log;
	include $demo/nginx/upstreams.conf;
	# The upstream approach: ports come from the records, no port written here.
	server {
		listen 127.0.0.1:$http_port;
		location / { proxy_pass http://docker_backend; proxy_next_upstream error timeout; }
	}
	# nginx 1.22's resolver approach: re-resolves through CoreDNS, port written by hand.
	server {
		listen 127.0.0.1:$resolver_port;
		resolver 127.0.0.1:$dns_port valid=5s ipv6=off;
		location / { set \$svc backend.$zone; proxy_pass http://\$svc:8086; }
	}
	# The frontend through its upstream; no retry on another server, so a failed request shows.
	server {
		listen 127.0.0.1:$frontend_port;
		location / { proxy_pass http://docker_frontend; proxy_next_upstream off; }
	}
}
NGINX
"$bin/rundock" upstreams --once --etcd-endpoints "$endpoint" --domain "$zone" --config "$root/examples/demo/nginx/upstreams.yml" \
  --output "$demo/nginx/upstreams.conf" --check-cmd "nginx -t -q -c $demo/nginx/nginx.conf -p $demo/nginx" --reload-cmd true \
  || fail "rundock upstreams --once failed"
sed 's/^/      /' "$demo/nginx/upstreams.conf"
nginx -c "$demo/nginx/nginx.conf" -p "$demo/nginx" || fail "nginx did not start (see $demo/nginx/error.log)"
sleep 0.3
"$bin/rundock" upstreams --watch --etcd-endpoints "$endpoint" --domain "$zone" --config "$root/examples/demo/nginx/upstreams.yml" \
  --output "$demo/nginx/upstreams.conf" --check-cmd "nginx -t -q -c $demo/nginx/nginx.conf -p $demo/nginx" \
  --reload-cmd "nginx -c $demo/nginx/nginx.conf -p $demo/nginx -s reload" >"$demo/upstreams.log" 2>&1 &
echo $! >"$demo/upstreams.pid"

# tally URL N: GET the URL N times and count who answered.
tally() {
  local url=$1 count=$2 i
  for i in $(seq "$count"); do curl -s --max-time 2 "$url" | awk '{print $1}' || echo "error"; done | sort | uniq -c | sed 's/^/      /'
}
step "curl through nginx: which instance answered (12 requests each)"
info "upstream approach, http://127.0.0.1:$http_port/:"; tally "http://127.0.0.1:$http_port/" 12
info "resolver approach, http://127.0.0.1:$resolver_port/:"; tally "http://127.0.0.1:$resolver_port/" 12

step "stop backend-a (sv down): its record is withdrawn at once, traffic moves to backend-b, the container stops after the drain"
t0=$(date +%s.%N)
sv -w 40 down "$demo/service/docker-backend-a" >/dev/null &
svdown=$!
wait_for 10 "backend-a withdrawn from DNS" sh -c "[ \$(dig @127.0.0.1 -p $dns_port +short backend.$zone A | wc -l) -eq 1 ]"
info "record gone $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}') s after sv down; the container serves on for the drain (dns_ttl, 10 s)"
info "backend.$zone A now:"; dig_short "backend.$zone" A | sed 's/^/      /'
wait_for 10 "upstreams re-rendered" sh -c "! grep -q 127.0.0.2 $demo/nginx/upstreams.conf"
sleep 1 # nginx -s reload: the new workers take over
info "upstream approach:"; tally "http://127.0.0.1:$http_port/" 6
sleep 5 # the resolver caches for valid=5s
info "resolver approach (after its 5 s cache):"; tally "http://127.0.0.1:$resolver_port/" 6
wait "$svdown" || fail "sv down backend-a"
info "backend-a stopped $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}') s after sv down"

step "start backend-a again"
sv -w 30 up "$demo/service/docker-backend-a" >/dev/null || fail "sv up backend-a"
wait_for 30 "backend-a announced again" sh -c "[ \$(dig @127.0.0.1 -p $dns_port +short backend.$zone A | wc -l) -eq 2 ]"
wait_for 10 "upstreams re-rendered" grep -q 127.0.0.2 "$demo/nginx/upstreams.conf"
info "upstream approach:"; tally "http://127.0.0.1:$http_port/" 6

step "update the frontend with no failed request (update: start-first): the new container starts beside the old one"
wait_for 10 "frontend serving through nginx" sh -c "curl -fs --max-time 2 http://127.0.0.1:$frontend_port/ | grep -q '^frontend '"
# load URL: GET URL every 50 ms until load.stop exists, one HTTP status a line (000: no answer).
# Its output goes to a file, never to the demo's stdout, so nothing outlives the script.
load() {
  while [ ! -e "$demo/load.stop" ]; do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 2 "$1" || true
    sleep 0.05
  done
}
load "http://127.0.0.1:$frontend_port/" </dev/null >"$demo/load.out" 2>&1 &
echo $! >"$demo/load.pid"
sed -i 's/INSTANCE: frontend$/INSTANCE: frontend-v2/' "$demo/services/frontend.yml"
t0=$(date +%s.%N)
"$bin/rundock" apply -f "$demo/services/frontend.yml" >"$demo/update.json" || { cat "$demo/update.json"; fail "rundock apply of the new frontend failed"; }
info "rundock apply returned after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}') s, with the new container serving"
sleep 1 # a few requests after the switch, too
touch "$demo/load.stop"
wait "$(cat "$demo/load.pid")" || true
rm -f "$demo/load.pid"
total=$(wc -l <"$demo/load.out")
failed=$(grep -vc '^200$' "$demo/load.out" || true)
info "during the update: $total requests through nginx, $failed failed"
[ "$failed" -eq 0 ] || fail "$failed of $total requests failed during the start-first update (see $demo/load.out)"
info "frontend.$zone SRV now (the other host port):"; dig_short "frontend.$zone" SRV | sed 's/^/      /'
info "frontend through nginx, http://127.0.0.1:$frontend_port/:"; tally "http://127.0.0.1:$frontend_port/" 4

if [ "${DEMO_KEEP:-0}" = 1 ]; then
  printf '\ndemo: running. Try: dig @127.0.0.1 -p %s backend.%s SRV; curl 127.0.0.1:%s\n' "$dns_port" "$zone" "$http_port"
  printf 'demo: stop it with: make demo-down\n'
else
  printf '\ndemo: done in %d s\n' "$SECONDS"
fi
