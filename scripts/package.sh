#!/usr/bin/env bash
# Builds a Debian package of nile_auth for Debian 12's PostgreSQL 15:
#   bash scripts/package.sh [--src DIR] [--out DIR]
# --src  the source tree to package (default: this checkout; the upgrade test packages the
#        previous release from a git worktree of its tag)
# --out  where the .deb goes (default: target/debian)
# Prints the path of the .deb. The package holds the library, the control file, the install
# script of the version being packaged and every upgrade script (sql/nile_auth--a--b.sql).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SRC=$REPO OUT=$REPO/target/debian
while [ $# -gt 0 ]; do
  case "$1" in
    --src) SRC=$(cd "$2" && pwd); shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: $0 [--src DIR] [--out DIR]" >&2; exit 2 ;;
  esac
done
export PATH="$HOME/.cargo/bin:$PATH"
PG_MAJOR=15
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
NAME=postgresql-$PG_MAJOR-nile-auth
version=$(sed -nE '/^\[package\]/,/^\[/ s/^version *= *"([^"]+)".*/\1/p' "$SRC/Cargo.toml")
arch=$(dpkg --print-architecture)
[ -n "$version" ] || { echo "no version in $SRC/Cargo.toml" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# Another tree (the previous release) builds in its own target directory under this checkout's:
# sharing one would let it overwrite the uplifted library and schema generator, which cargo
# does not copy again for a crate it considers fresh, so the next package of this tree would
# ship the other version's code.
target=${CARGO_TARGET_DIR:-$REPO/target}
[ "$SRC" = "$REPO" ] || target=$REPO/target/other-source
(cd "$SRC" && CARGO_TARGET_DIR=$target cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$stage/root") >&2

doc=$stage/root/usr/share/doc/$NAME
install -d "$doc" "$stage/root/DEBIAN"
cat >"$doc/copyright" <<TXT
nile_auth: users, tenants and tenant isolation inside PostgreSQL.
License: Apache-2.0
On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.
TXT
[ -f "$SRC/CHANGELOG.md" ] && gzip -9n <"$SRC/CHANGELOG.md" >"$doc/changelog.gz"
[ -f "$SRC/docs/upgrading.md" ] && install -m 0644 "$SRC/docs/upgrading.md" "$doc/upgrading.md"
cat >"$stage/root/DEBIAN/control" <<CTL
Package: $NAME
Version: $version
Architecture: $arch
Maintainer: nile_auth maintainers <maintainers@nile-auth.invalid>
Depends: postgresql-$PG_MAJOR, libc6
Section: database
Priority: optional
Installed-Size: $(du -sk "$stage/root" | cut -f1)
Description: users, tenants and tenant isolation inside PostgreSQL $PG_MAJOR
 nile_auth keeps users, tenants and tenant membership in the database and
 enforces tenant isolation with row-level security. After installing or
 upgrading the package, run ALTER EXTENSION nile_auth UPDATE in every database
 that has the extension (see upgrading.md).
CTL
find "$stage/root" -type d -exec chmod 0755 {} +
find "$stage/root" -type f -exec chmod 0644 {} +
mkdir -p "$OUT"
deb=$OUT/${NAME}_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage/root" "$deb" >&2
echo "$deb"
