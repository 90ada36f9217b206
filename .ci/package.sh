#!/usr/bin/env bash
# Checks that the library crates package for crates.io (without publishing them) and that
# each package holds only what it should: sources, examples, migrations, README, licenses and
# Cargo's own files. Prints each package's size and file count.
set -euo pipefail
cd "$(dirname "$0")/.."
crates=(workflow-core workflow-store-sled workflow-store-postgres workflow-cli)
allowed='^(Cargo\.toml|Cargo\.toml\.orig|Cargo\.lock|\.cargo_vcs_info\.json|README\.md|LICENSE-MIT|LICENSE-APACHE|src/.*\.rs|src/ui/assets/[a-z]+\.(css|js)|examples/[a-z_]+\.rs|migrations/[0-9]{4}_[a-z_]+\.sql)$'
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
# rust-version must not promise less than the locked dependencies need (no older toolchain
# can be installed here to try it, so compare the declared rust-version of every package).
cargo metadata --format-version 1 --locked | python3 -c '
import json, sys
m = json.load(sys.stdin)
def v(s): return tuple(int(x) for x in s.split("."))[:2]
ours = {p["name"]: p["rust_version"] for p in m["packages"] if p["name"] in sys.argv[1:]}
need = max((v(p["rust_version"]), p["name"]) for p in m["packages"] if p.get("rust_version") and p["name"] not in ours)
for name, rv in ours.items():
    if rv is None or v(rv) < need[0]:
        sys.exit(f"{name}: rust-version {rv} is below {need[0][0]}.{need[0][1]}, which {need[1]} needs")
print(f"rust-version {set(ours.values())} covers every locked dependency (highest: {need[1]} {need[0][0]}.{need[0][1]})")
' "${crates[@]}" || status=1
exit "$status"
