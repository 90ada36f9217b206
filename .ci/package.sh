#!/usr/bin/env bash
# Checks that the library crates package for crates.io (without publishing them) and that
# each package holds only what it should: sources, examples, migrations, README, licenses and
# Cargo's own files. Prints each package's size and file count.
set -euo pipefail
cd "$(dirname "$0")/.."
crates=(workflow-core workflow-store-sled workflow-store-postgres workflow-cli)
allowed='^(Cargo\.toml|Cargo\.toml\.orig|Cargo\.lock|\.cargo_vcs_info\.json|README\.md|LICENSE-MIT|LICENSE-APACHE|src/.*\.rs|examples/[a-z_]+\.rs|migrations/[0-9]{4}_[a-z_]+\.sql)$'
args=()
for c in "${crates[@]}"; do args+=(-p "$c"); done
# Packages them together, so each crate's dependency on its siblings resolves to the sibling
# being packaged (none is on crates.io yet).
cargo package "${args[@]}" --no-verify --allow-dirty --quiet
status=0
for c in "${crates[@]}"; do
  files="$(cargo package -p "$c" --list --allow-dirty --quiet)"
  bad="$(grep -Ev "$allowed" <<<"$files" || true)"
  if [ -n "$bad" ]; then
    echo "package $c holds files it should not:" >&2
    echo "$bad" >&2
    status=1
  fi
  for required in README.md LICENSE-MIT LICENSE-APACHE src/lib.rs; do
    grep -qx "$required" <<<"$files" || { echo "package $c lacks $required" >&2; status=1; }
  done
  crate_file="$(ls target/package/"$c"-*.crate)"
  printf '%-26s %4d files %8s bytes compressed\n' "$c" "$(wc -l <<<"$files")" "$(stat -c %s "$crate_file")"
done
exit "$status"
