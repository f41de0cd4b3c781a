#!/usr/bin/env bash
# The test command: install the test peers, then run every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test-deps.sh
# Tests find PyPI tools (sushy-emulator, pyghmi, baremetal, ...) here.
export PATH="$PWD/.venv-test/bin:$PATH:/usr/sbin:/sbin"
export IRONIC_TEST_VENV="$PWD/.venv-test"
cargo build --workspace --all-targets --locked
cargo test --workspace --locked "$@"
