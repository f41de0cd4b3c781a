#!/usr/bin/env bash
# Installs everything the tests talk to: Debian packages listed in */test-deps/apt.txt
# and PyPI packages listed in */test-deps/pip.txt (into the venv .venv-test/).
# Safe to run again; does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

list() { # every test-deps/<file> of the workspace, comments stripped, deduplicated
  find . \( -path ./target -o -path './.venv*' -o -path ./.git \) -prune -o -path "*/test-deps/$1" -print 2>/dev/null | sort | xargs -r cat | sed 's/#.*//' | tr -s ' \t' '\n' | { grep -v '^$' || true; } | sort -u | xargs -r echo
}
apt_pkgs=$(list apt.txt)
pip_pkgs=$(list pip.txt)

if [ -n "$apt_pkgs" ]; then
  missing=""
  for p in $apt_pkgs; do
    # entries may pin a release (qemu-utils/bookworm) or a version (name=ver)
    name=${p%%/*}; name=${name%%=*}
    dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    # pinned entries go along with every install, so apt resolves them together
    for p in $apt_pkgs; do case "$p" in */*|*=*) case " $missing " in *" $p "*) ;; *) missing="$missing $p";; esac;; esac; done
    echo "setup-test-deps: installing Debian packages:$missing"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends --allow-downgrades $missing
  fi
fi

if [ -n "$pip_pkgs" ]; then
  if [ ! -x .venv-test/bin/python ]; then
    python3 -m venv .venv-test
  fi
  stamp=.venv-test/.installed
  want=$(echo "$pip_pkgs" | tr ' ' '\n' | sort | tr '\n' ' ')
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup-test-deps: installing PyPI packages into .venv-test: $want"
    .venv-test/bin/pip install -q --upgrade pip
    .venv-test/bin/pip install -q $want
    echo "$want" > "$stamp"
  fi
fi

# Open vSwitch (ironic-switch-ovs and the switch network tests): start ovsdb-server and
# ovs-vswitchd when nothing answers on the database socket. No systemd here, and the
# kernel has no openvswitch module: the tests create bridges with datapath_type=netdev.
if command -v ovs-vsctl >/dev/null 2>&1 && ! ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
  echo "setup-test-deps: starting Open vSwitch"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/dev/null 2>&1 || true
  ovs-vsctl --timeout=10 show >/dev/null 2>&1 || { echo "setup-test-deps: Open vSwitch did not start" >&2; exit 1; }
fi

# The real OpenStack Ironic (PyPI `ironic`, listed in */test-deps/pip-ironic.txt) in its
# own venv: its pins conflict with the packages of .venv-test.
ironic_pkgs=$(list pip-ironic.txt)
if [ -n "$ironic_pkgs" ]; then
  if [ ! -x .venv-ironic/bin/python ]; then
    python3 -m venv .venv-ironic
  fi
  stamp=.venv-ironic/.installed
  want=$(echo "$ironic_pkgs" | tr ' ' '\n' | sort | tr '\n' ' ')
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup-test-deps: installing PyPI packages into .venv-ironic: $want"
    .venv-ironic/bin/pip install -q --upgrade pip
    .venv-ironic/bin/pip install -q $want
    echo "$want" > "$stamp"
  fi
fi

# The real ironic-python-agent (*/test-deps/pip-ipa.txt) in its own venv, made with
# Debian's /usr/bin/python3: the test runs it in a QEMU VM that sees only the host's /usr,
# /etc and this checkout (a python from elsewhere, e.g. pyenv's, would not be there).
ipa_pkgs=$(list pip-ipa.txt)
if [ -n "$ipa_pkgs" ]; then
  if [ ! -x .venv-ipa/bin/python ] || [ "$(readlink -f .venv-ipa/bin/python)" != "$(readlink -f /usr/bin/python3)" ]; then
    rm -rf .venv-ipa
    /usr/bin/python3 -m venv .venv-ipa
  fi
  stamp=.venv-ipa/.installed
  want=$(echo "$ipa_pkgs" | tr ' ' '\n' | sort | tr '\n' ' ')
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup-test-deps: installing PyPI packages into .venv-ipa: $want"
    .venv-ipa/bin/pip install -q $want
    echo "$want" > "$stamp"
  fi
fi

# PostgreSQL (ironic-core's PostgresStore and the multi-conductor tests): when nothing
# answers on 127.0.0.1:5432, start the newest Debian cluster (no systemd here), then make
# sure the role and database the tests use exist. Each test creates and drops its own
# database (the role has CREATEDB), so concurrent runs do not collide. Another server can
# be used instead by pointing IRONIC_TEST_POSTGRES_URL at it.
if [ -z "${IRONIC_TEST_POSTGRES_URL:-}" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  as_postgres() { (cd /tmp && if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi); }
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
    if [ -z "$ver" ]; then
      ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
      $SUDO pg_createcluster "$ver" main >/dev/null
    fi
    echo "setup-test-deps: starting PostgreSQL $ver"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    pg_isready -q -h 127.0.0.1 -p 5432 || { echo "setup-test-deps: PostgreSQL did not start" >&2; exit 1; }
  fi
  if ! PGPASSWORD=ironic_test psql -h 127.0.0.1 -U ironic_test -d ironic_test -qAtc 'SELECT 1' >/dev/null 2>&1; then
    echo "setup-test-deps: creating the PostgreSQL role and database ironic_test"
    as_postgres psql -q -v ON_ERROR_STOP=1 -c "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ironic_test') THEN
          CREATE ROLE ironic_test LOGIN CREATEDB PASSWORD 'ironic_test';
        END IF; END \$\$;"
    as_postgres psql -qAtc "SELECT 1 FROM pg_database WHERE datname = 'ironic_test'" | grep -q 1 \
      || as_postgres createdb -O ironic_test ironic_test
  fi
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup-test-deps: installing cargo-nextest (runs the tests in parallel processes)"
  cargo install --locked cargo-nextest || echo "setup-test-deps: cargo-nextest could not be installed; tests will run with cargo test"
fi
echo "setup-test-deps: done"
