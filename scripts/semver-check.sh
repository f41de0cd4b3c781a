#!/usr/bin/env bash
# Semver gate of the published crates: `cargo semver-checks` compares the public API of
# every library crate of the workspace with the last release and fails when the change
# that the version number in Cargo.toml declares is smaller than the change made (an item
# removed, a required trait method added, a field added to an exhaustive struct, ... under
# a patch bump, or under a minor bump after 1.0).
#
# The last release is 0.1.0: the tag `0.1.0` where this clone has it, else its commit
# (tags do not travel with every clone). The workspace is at 0.2.0, a release that may
# break before 1.0 (see CHANGELOG.md), so today every check is skipped as cargo
# semver-checks prints; once 0.2.0 is tagged and BASELINE_* move to it, a 0.2.x that
# breaks the API fails here. What the gate would refuse under a patch bump today:
#
#   scripts/semver-check.sh --release-type patch
#
# Cost: `cargo semver-checks` alone builds each crate twice in a target directory of its
# own (ten cold builds of tokio, sqlx, ... for five crates: over 30 minutes on 2 cores).
# Here the rustdoc JSON of all crates is made by one `cargo doc` per side in the
# workspace's target directory, reusing what the build already compiled, and the tool
# only compares the JSON files.
#
# Crates that did not exist at the baseline (ironic-iso, ironic-switch-ovs) have nothing
# to compare and are listed as new; `publish = false` crates (examples, benches) are not
# checked. cargo-semver-checks is installed (into ~/.cargo/bin) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.51.0
BASELINE_TAG=0.1.0
BASELINE_COMMIT=300f7671e598300bdabbb352cdf2c89f3de7434b

if ! cargo semver-checks --version 2>/dev/null | grep -q "$VERSION"; then
  echo "semver-check: installing cargo-semver-checks $VERSION (cargo install --locked)"
  # Its release profile asks for fat LTO and one codegen unit: a long link on 2 cores for
  # a tool that runs once per CI run.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install --locked --quiet cargo-semver-checks --version "$VERSION"
fi

if ! git cat-file -e "$BASELINE_COMMIT^{commit}" 2>/dev/null &&
  [ "$(git rev-parse --is-shallow-repository)" = true ]; then
  git fetch --quiet --unshallow 2>/dev/null || true
  if ! git cat-file -e "$BASELINE_COMMIT^{commit}" 2>/dev/null; then
    echo "semver-check: SKIPPED: this is a shallow clone without the $BASELINE_TAG commit" >&2
    echo "semver-check: $BASELINE_COMMIT and it could not be fetched; clone the full history" >&2
    exit 0
  fi
fi
if git rev-parse -q --verify "refs/tags/$BASELINE_TAG^{commit}" >/dev/null; then
  baseline=$BASELINE_TAG
elif git cat-file -e "$BASELINE_COMMIT^{commit}" 2>/dev/null; then
  baseline=$BASELINE_COMMIT
else
  echo "semver-check: neither tag $BASELINE_TAG nor its commit $BASELINE_COMMIT is in this clone;" >&2
  echo "semver-check: fetch the full history (git fetch --unshallow --tags) and run again" >&2
  exit 2
fi

target=${CARGO_TARGET_DIR:-$PWD/target}
work=$target/semver-check
rm -rf "$work"
mkdir -p "$work/baseline-src" "$work/current" "$work/baseline"
git archive "$baseline" | tar -x -C "$work/baseline-src"

# The names of the publishable library crates of the workspace in directory $1.
published() {
  (cd "$1" && cargo metadata --no-deps --format-version 1 --locked) | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p.get("publish") != [] and any("lib" in t["kind"] for t in p["targets"]):
        print(p["name"])'
}

# rustdoc JSON of the crates $2... of the workspace in $1, with every feature, into $target/doc.
rustdoc_json() {
  local dir=$1
  shift
  local args=()
  for c in "$@"; do args+=(-p "$c"); done
  (cd "$dir" && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$target" \
    RUSTDOCFLAGS="-Z unstable-options --output-format json --cap-lints allow" \
    cargo doc --quiet --locked --no-deps --all-features "${args[@]}")
}

mapfile -t current < <(published .)
mapfile -t old < <(published "$work/baseline-src")
echo "semver-check: $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1) against $BASELINE_TAG ($baseline): ${current[*]}"

rustdoc_json . "${current[@]}"
for c in "${current[@]}"; do cp "$target/doc/${c//-/_}.json" "$work/current/"; done
rustdoc_json "$work/baseline-src" "${old[@]}"
for c in "${old[@]}"; do cp "$target/doc/${c//-/_}.json" "$work/baseline/"; done

status=0
for c in "${current[@]}"; do
  f=${c//-/_}.json
  if [ ! -f "$work/baseline/$f" ]; then
    echo "semver-check: $c is new since $BASELINE_TAG: nothing to compare"
    continue
  fi
  echo "semver-check: $c"
  cargo semver-checks check-release \
    --baseline-rustdoc "$work/baseline/$f" --current-rustdoc "$work/current/$f" "$@" || status=1
done
exit $status
