#!/usr/bin/env bash
# Checks a .deb from scripts/package.sh without installing it: unpacked with dpkg -x into a
# scratch directory, it holds exactly the control file, the install script of its version,
# every upgrade script in sql/, the library and the docs; its metadata names the right
# package, version and dependency; and the library exports every C symbol the install script
# declares (a missing one would fail at CREATE EXTENSION).
#   bash tests/package/check.sh DEB
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=$1
check() { # name expected actual
  if [ "$2" = "$3" ]; then echo "ok: $1"; else printf 'FAIL: %s\n  expected: %s\n  got:      %s\n' "$1" "$2" "$3"; exit 1; fi
}
version=$(sed -nE '/^\[package\]/,/^\[/ s/^version *= *"([^"]+)".*/\1/p' Cargo.toml)
name=postgresql-15-nile-auth
ext=usr/share/postgresql/15/extension
lib=usr/lib/postgresql/15/lib/nile_auth.so

check "package name" "$name" "$(dpkg-deb -f "$deb" Package)"
check "package version" "$version" "$(dpkg-deb -f "$deb" Version)"
check "depends on the server it was built for" "postgresql-15, libc6" "$(dpkg-deb -f "$deb" Depends)"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
dpkg -x "$deb" "$scratch"
expected=$( {
  echo "$lib"
  echo "$ext/nile_auth.control"
  echo "$ext/nile_auth--$version.sql"
  for f in sql/nile_auth--*--*.sql; do echo "$ext/$(basename "$f")"; done
  echo "usr/share/doc/$name/copyright"
  echo "usr/share/doc/$name/changelog.gz"
  echo "usr/share/doc/$name/upgrading.md"
} | sort)
check "file list" "$expected" "$(cd "$scratch" && find . -type f | sed 's|^\./||' | sort)"
check "control file installs this version" "default_version = '$version'" \
  "$(grep '^default_version' "$scratch/$ext/nile_auth.control")"
for f in sql/nile_auth--*--*.sql; do
  check "upgrade script $(basename "$f") shipped as written" "" "$(diff "$f" "$scratch/$ext/$(basename "$f")")"
done

file "$scratch/$lib" | grep -q 'ELF 64-bit LSB shared object' || { echo "FAIL: $lib is not a shared object"; exit 1; }
exported=$(nm -D --defined-only "$scratch/$lib" | awk '{print $3}' | sort -u)
declared=$(grep -oE "'MODULE_PATHNAME', *'[A-Za-z0-9_]+'" "$scratch/$ext/nile_auth--$version.sql" | sed -E "s/.*'([A-Za-z0-9_]+)'$/\1/" | sort -u)
[ -n "$declared" ] || { echo "FAIL: the install script declares no C functions"; exit 1; }
check "library exports every declared C symbol" "" "$(comm -23 <(echo "$declared") <(echo "$exported"))"
check "library is a PostgreSQL module" "Pg_magic_func" "$(echo "$exported" | grep -x Pg_magic_func)"
