#!/usr/bin/env bash
# Starts the local Postgres and Redis the test suite talks to, if they are down. Tests never fake
# them; a test that needs one fails with a clear message when it is unreachable.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }

if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_up; then
  echo "starting postgres"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if command -v redis-server >/dev/null 2>&1 && ! redis_up; then
  echo "starting redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
for _ in $(seq 1 30); do
  if pg_up && redis_up; then echo "postgres and redis are up"; exit 0; fi
  sleep 1
done
pg_up || echo "warning: postgres is not reachable on 127.0.0.1:5432" >&2
redis_up || echo "warning: redis is not reachable on 127.0.0.1:6379" >&2
