#!/usr/bin/env bash
# The test command: install the test peers, then run every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test-deps.sh
# Tests find PyPI tools (sushy-emulator, pyghmi, baremetal, ...) here.
export PATH="$PWD/.venv-test/bin:$PATH:/usr/sbin:/sbin"
export IRONIC_TEST_VENV="$PWD/.venv-test"
cargo build --workspace --all-targets --locked
if cargo nextest --version >/dev/null 2>&1; then
  # Each test in its own process, several at once (.config/nextest.toml); then the doctests,
  # which nextest does not run.
  cargo nextest run --workspace --locked "$@"
  cargo test --workspace --locked --doc
else
  echo "test.sh: cargo-nextest not found (cargo install --locked cargo-nextest); using cargo test"
  cargo test --workspace --locked "$@"
fi
