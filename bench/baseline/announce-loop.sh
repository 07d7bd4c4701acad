#!/usr/bin/env bash
# announce-loop.sh is the baseline the announcer is measured against: the original 2014
# shell loop, ported to etcd v3. It PUTs the record with a fresh 60 s lease every 45 s,
# whatever the container is doing, and deletes it on TERM/INT.
# Usage: announce-loop.sh ENDPOINTS KEY VALUE [INTERVAL_S TTL_S]
set -u
ep=$1 key=$2 value=$3 interval=${4:-45} ttl=${5:-60}
export ETCDCTL_API=3
trap 'etcdctl --endpoints="$ep" del "$key" >/dev/null; exit 0' TERM INT
while :; do
  lease=$(etcdctl --endpoints="$ep" lease grant "$ttl" | awk '{print $2}')
  etcdctl --endpoints="$ep" put --lease="$lease" "$key" "$value" >/dev/null
  # sleep in the background so TERM is handled at once, not after the sleep
  sleep "$interval" & wait $!
done
