//! One call to make an application table tenant-isolated.
//!
//! `enable_tenant_isolation(tbl)` gives the table a `tenant_id uuid NOT NULL REFERENCES
//! nile_auth.tenants(id) DEFAULT nile_auth.tenant_id()`, enables and FORCEs row-level security
//! (so the owner is bound too), and creates the single policy
//!   tenant_isolation FOR ALL USING (tenant_id = nile_auth.tenant_id()) WITH CHECK (same)
//! plus an index leading with tenant_id. The policy is a plain STABLE call with no subquery,
//! which keeps it valid when the table is later distributed by tenant_id (Citus).

use crate::db::{read_one, write};
use crate::errors::{AuthError, OrRaise, required};
use crate::privilege::as_extension_owner;
use pgrx::{PgRelation, pg_sys};
use pgrx::prelude::*;

const POLICY: &str = "tenant_isolation";

/// The table's name as SQL (schema-qualified) after checking the caller owns it. Owners need no
/// superuser rights, but the DDL below runs as the extension owner: adding a foreign key to
/// nile_auth.tenants needs REFERENCES on it, which application roles are not given. The checks
/// are catalog calls, not SQL, so nothing in them resolves through the caller's search_path.
fn owned_table(tbl: pg_sys::Oid) -> String {
    // SAFETY: catalog-cache lookups inside a transaction; relkind 0 means no such relation.
    let (kind, owns) = unsafe {
        let kind = pg_sys::get_rel_relkind(tbl) as u8;
        (kind, kind != 0 && pg_sys::pg_class_ownercheck(tbl, pg_sys::GetUserId()))
    };
    if kind == 0 {
        AuthError::NotFound(format!("relation with OID {} does not exist", tbl.to_u32())).raise();
    }
    // Under the pinned path, regclass output is schema-qualified wherever it is not pg_catalog.
    let name = as_extension_owner(|| read_one::<String>("SELECT $1::pg_catalog.regclass::pg_catalog.text", &[tbl.into()]))
        .unwrap_or_default();
    if !owns {
        AuthError::PermissionDenied(format!("must be owner of table {name}")).raise();
    }
    if kind != pg_sys::RELKIND_RELATION && kind != pg_sys::RELKIND_PARTITIONED_TABLE {
        AuthError::InvalidParameter(format!("{name} is not a table")).raise();
    }
    name
}

/// The OID of a `regclass` argument. The relation pgrx opened is closed at once: ALTER TABLE
/// refuses a table this session still holds open.
fn table_oid(tbl: Option<PgRelation>) -> pg_sys::Oid {
    required(tbl, "tbl").or_raise().oid()
}

#[pg_extern(volatile)]
fn enable_tenant_isolation(tbl: Option<PgRelation>) -> bool {
    let tbl = table_oid(tbl);
    let name = owned_table(tbl);
    as_extension_owner(|| {
        let column_type = read_one::<String>(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
              WHERE attrelid = $1 AND attname = 'tenant_id' AND NOT attisdropped",
            &[tbl.into()],
        );
        match column_type.as_deref() {
            None => write(
                &format!("ALTER TABLE {name} ADD COLUMN tenant_id uuid NOT NULL DEFAULT nile_auth.tenant_id()"),
                &[],
            ),
            Some("uuid") => write(
                &format!(
                    "ALTER TABLE {name} ALTER COLUMN tenant_id SET DEFAULT nile_auth.tenant_id(),
                                        ALTER COLUMN tenant_id SET NOT NULL"
                ),
                &[],
            ),
            Some(other) => {
                AuthError::InvalidParameter(format!("{name}.tenant_id must be uuid, not {other}")).raise()
            }
        }
        let has_fk = read_one::<bool>(
            "SELECT true FROM pg_constraint con JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
              WHERE con.conrelid = $1 AND con.contype = 'f' AND array_length(con.conkey, 1) = 1
                AND a.attname = 'tenant_id' AND con.confrelid = 'nile_auth.tenants'::regclass",
            &[tbl.into()],
        );
        if has_fk != Some(true) {
            write(&format!("ALTER TABLE {name} ADD FOREIGN KEY (tenant_id) REFERENCES nile_auth.tenants (id)"), &[]);
        }
        write(&format!("ALTER TABLE {name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"), &[]);
        let has_policy =
            read_one::<bool>("SELECT true FROM pg_policy WHERE polrelid = $1 AND polname = $2", &[tbl.into(), POLICY.into()]);
        if has_policy == Some(true) {
            // Recreated rather than kept, so a policy edited by hand is put back as documented.
            write(&format!("DROP POLICY {POLICY} ON {name}"), &[]);
        }
        write(
            &format!(
                "CREATE POLICY {POLICY} ON {name} FOR ALL
                   USING (tenant_id = nile_auth.tenant_id()) WITH CHECK (tenant_id = nile_auth.tenant_id())"
            ),
            &[],
        );
        let indexed = read_one::<bool>(
            "SELECT true FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
              WHERE i.indrelid = $1 AND a.attname = 'tenant_id' AND i.indpred IS NULL LIMIT 1",
            &[tbl.into()],
        );
        if indexed != Some(true) {
            write(&format!("CREATE INDEX ON {name} (tenant_id)"), &[]);
        }
    });
    true
}

/// Removes the policy and row-level security. The tenant_id column, its foreign key and index
/// stay: they hold data.
#[pg_extern(volatile)]
fn disable_tenant_isolation(tbl: Option<PgRelation>) -> bool {
    let tbl = table_oid(tbl);
    let name = owned_table(tbl);
    as_extension_owner(|| {
        write(&format!("DROP POLICY IF EXISTS {POLICY} ON {name}"), &[]);
        write(&format!("ALTER TABLE {name} NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY"), &[]);
    });
    true
}
