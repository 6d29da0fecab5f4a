# Starts a throwaway PostgreSQL cluster for tests: fsync off, random free port, removed on
# stop. PostgreSQL refuses to run as root, so as root it runs as the `postgres` user.
# Sourced by scripts/test; sets DATABASE_URL.

pg_bin_dir() {
  if [ -n "${LUX_PG_BIN:-}" ]; then echo "$LUX_PG_BIN"; return; fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  if command -v pg_config >/dev/null; then pg_config --bindir; return; fi
  echo "PostgreSQL server binaries not found: apt-get install postgresql (or set DATABASE_URL)" >&2
  return 1
}

free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$(( (RANDOM % 20000) + 30000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  return 1
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_throwaway_postgres() {
  local bin port
  bin=$(pg_bin_dir)
  port=$(free_port)
  LUX_TEST_PGDATA=$(mktemp -d /tmp/lux-test-pg.XXXXXX)
  chmod 755 "$LUX_TEST_PGDATA"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$LUX_TEST_PGDATA"; fi
  as_pg "$bin/initdb" -D "$LUX_TEST_PGDATA/data" -U postgres --auth=trust -N --no-instructions >/dev/null
  # A port that refused a connection may still be taken (an outgoing connection's local
  # port, a listener starting at the same moment): try a few before giving up.
  local attempt
  for attempt in 1 2 3 4 5; do
    if as_pg "$bin/pg_ctl" -D "$LUX_TEST_PGDATA/data" -l "$LUX_TEST_PGDATA/server.log" -w \
      -o "-p $port -k $LUX_TEST_PGDATA -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      start >/dev/null; then
      break
    fi
    if [ "$attempt" = 5 ]; then
      echo "the test PostgreSQL did not start; its log:" >&2
      tail -n 20 "$LUX_TEST_PGDATA/server.log" >&2
      return 1
    fi
    port=$(free_port)
  done
  LUX_TEST_PG_BIN=$bin
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "test PostgreSQL on port $port ($LUX_TEST_PGDATA)"
}

stop_throwaway_postgres() {
  as_pg "$LUX_TEST_PG_BIN/pg_ctl" -D "$LUX_TEST_PGDATA/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$LUX_TEST_PGDATA"
}
