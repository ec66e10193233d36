//! One call to make an application table tenant-isolated.
//!
//! `enable_tenant_isolation(tbl)` gives the table a `tenant_id uuid NOT NULL REFERENCES
//! nile_auth.tenants(id) DEFAULT nile_auth.tenant_id()`, enables and FORCEs row-level security
//! (so the owner is bound too), and creates the single policy
//!   tenant_isolation FOR ALL USING (tenant_id = nile_auth.tenant_id()) WITH CHECK (same)
//! plus an index leading with tenant_id. The policy is a plain STABLE call with no subquery,
//! which keeps it valid when the table is later distributed by tenant_id (Citus).
//!
//! What row-level security alone leaves open is closed here too: every partition gets the same
//! policy, now and (through the event trigger in sql/isolation_guards.sql) when created or
//! attached later; TRUNCATE, which skips row-level security, is refused to all but trusted
//! backends; another permissive policy, which would widen the isolation, is refused; and each
//! unique key without tenant_id is reported (a 23505 tells one tenant another's values exist).

use crate::db::{read_all, read_one, write};
use crate::errors::{AuthError, OrRaise, required};
use crate::privilege::as_extension_owner;
use pgrx::{PgRelation, pg_sys};
use pgrx::prelude::*;

const POLICY: &str = "tenant_isolation";
/// The BEFORE TRUNCATE trigger every isolated table gets.
const TRUNCATE_GUARD: &str = "tenant_isolation_truncate";

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
    // SAFETY: a catalog-cache lookup inside a transaction.
    if unsafe { pg_sys::get_rel_relispartition(tbl) } {
        AuthError::InvalidParameter(format!("{name} is a partition: isolate the partitioned table it belongs to")).raise();
    }
    as_extension_owner(|| {
        refuse_permissive_policies(tbl, &name);
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
        // Recreated rather than kept, so a policy edited by hand is put back as documented.
        if has_policy(tbl) {
            write(&format!("DROP POLICY {POLICY} ON {name}"), &[]);
        }
        bind(tbl, &name);
        for (partition, partition_name) in partitions(tbl) {
            bind(partition, &partition_name);
        }
        let indexed = read_one::<bool>(
            "SELECT true FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
              WHERE i.indrelid = $1 AND a.attname = 'tenant_id' AND i.indpred IS NULL LIMIT 1",
            &[tbl.into()],
        );
        if indexed != Some(true) {
            write(&format!("CREATE INDEX ON {name} (tenant_id)"), &[]);
        }
        for index in read_all::<String>(
            "SELECT i.indexrelid::pg_catalog.regclass::pg_catalog.text FROM pg_catalog.pg_index i
              WHERE i.indrelid = $1 AND i.indisunique
                AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                                 WHERE a.attrelid = i.indrelid AND a.attname = 'tenant_id'
                                   AND a.attnum = ANY (i.indkey::pg_catalog.int2[]))
              ORDER BY 1",
            &[tbl.into()],
        ) {
            pgrx::warning!(
                "unique index {index} on {name} does not include tenant_id: a unique violation (23505) tells one tenant that another tenant has the value; include tenant_id in the key"
            );
        }
    });
    true
}

fn has_policy(tbl: pg_sys::Oid) -> bool {
    read_one::<bool>(
        "SELECT true FROM pg_catalog.pg_policy WHERE polrelid = $1 AND polname = $2",
        &[tbl.into(), POLICY.into()],
    ) == Some(true)
}

/// Every table below `tbl` in its partition tree, with its name as SQL.
fn partitions(tbl: pg_sys::Oid) -> Vec<(pg_sys::Oid, String)> {
    read_all::<pg_sys::Oid>(
        "SELECT t.relid FROM pg_catalog.pg_partition_tree($1) t
           JOIN pg_catalog.pg_class c ON c.oid = t.relid
          WHERE t.relid <> $1 AND c.relkind IN ('r', 'p') ORDER BY t.level, t.relid",
        &[tbl.into()],
    )
    .into_iter()
    .map(|oid| (oid, read_one::<String>("SELECT $1::pg_catalog.regclass::pg_catalog.text", &[oid.into()]).unwrap_or_default()))
    .collect()
}

/// Refuses other permissive policies on `tbl` and its partitions: PostgreSQL ORs permissive
/// policies, so any of them would widen the isolation. Restrictive ones only narrow it.
fn refuse_permissive_policies(tbl: pg_sys::Oid, name: &str) {
    let others = read_all::<String>(
        "SELECT p.polname || ' on ' || p.polrelid::pg_catalog.regclass::pg_catalog.text
           FROM pg_catalog.pg_policy p
          WHERE (p.polrelid = $1 OR p.polrelid IN (SELECT relid FROM pg_catalog.pg_partition_tree($1)))
            AND p.polpermissive AND p.polname <> $2
          ORDER BY 1",
        &[tbl.into(), POLICY.into()],
    );
    if !others.is_empty() {
        AuthError::ObjectNotInPrerequisiteState(format!(
            "{name} has other permissive policies, which would widen tenant isolation: {}; drop them or recreate them AS RESTRICTIVE",
            others.join(", ")
        ))
        .raise();
    }
}

/// The policy, row-level security and the TRUNCATE guard on one table, each added only if
/// missing (the event trigger runs this again for DDL this very function issues).
fn bind(tbl: pg_sys::Oid, name: &str) {
    if !has_policy(tbl) {
        write(
            &format!(
                "CREATE POLICY {POLICY} ON {name} FOR ALL
                   USING (tenant_id = nile_auth.tenant_id()) WITH CHECK (tenant_id = nile_auth.tenant_id())"
            ),
            &[],
        );
    }
    let forced = read_one::<bool>(
        "SELECT relrowsecurity AND relforcerowsecurity FROM pg_catalog.pg_class WHERE oid = $1",
        &[tbl.into()],
    );
    if forced != Some(true) {
        write(&format!("ALTER TABLE {name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"), &[]);
    }
    let guarded = read_one::<bool>(
        "SELECT true FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = $2",
        &[tbl.into(), TRUNCATE_GUARD.into()],
    );
    if guarded != Some(true) {
        write(
            &format!(
                "CREATE TRIGGER {TRUNCATE_GUARD} BEFORE TRUNCATE ON {name}
                   FOR EACH STATEMENT EXECUTE FUNCTION nile_auth._refuse_truncate()"
            ),
            &[],
        );
    }
}

/// For the event trigger: after DDL on `rel`, every table of an isolated partition tree that
/// `rel` belongs to is isolated too (CREATE TABLE ... PARTITION OF, ATTACH PARTITION).
#[pg_extern(volatile, name = "_isolate_partitions")]
fn isolate_partitions(rel: pg_sys::Oid) {
    as_extension_owner(|| {
        let isolated = read_one::<bool>(
            "SELECT true FROM pg_catalog.pg_class c
              WHERE c.oid = $1 AND c.relkind IN ('r', 'p')
                AND EXISTS (SELECT FROM pg_catalog.pg_partition_ancestors($1) a
                              JOIN pg_catalog.pg_policy p ON p.polrelid = a.relid AND p.polname = $2)",
            &[rel.into(), POLICY.into()],
        );
        if isolated != Some(true) {
            return;
        }
        let name = read_one::<String>("SELECT $1::pg_catalog.regclass::pg_catalog.text", &[rel.into()]).unwrap_or_default();
        refuse_permissive_policies(rel, &name);
        bind(rel, &name);
        for (partition, partition_name) in partitions(rel) {
            bind(partition, &partition_name);
        }
    });
}

/// For the event trigger: a permissive policy created on an isolated table (or a partition of
/// one) is refused, as enable_tenant_isolation refuses one that exists.
#[pg_extern(volatile, name = "_check_new_policy")]
fn check_new_policy(policy: pg_sys::Oid) {
    as_extension_owner(|| {
        let widening = read_one::<String>(
            "SELECT p.polname || ' on ' || p.polrelid::pg_catalog.regclass::pg_catalog.text
               FROM pg_catalog.pg_policy p
              WHERE p.oid = $1 AND p.polpermissive AND p.polname <> $2
                AND EXISTS (SELECT FROM pg_catalog.pg_partition_ancestors(p.polrelid) a
                              JOIN pg_catalog.pg_policy t ON t.polrelid = a.relid AND t.polname = $2
                             UNION ALL
                            SELECT FROM pg_catalog.pg_policy t WHERE t.polrelid = p.polrelid AND t.polname = $2)",
            &[policy.into(), POLICY.into()],
        );
        if let Some(widening) = widening {
            AuthError::ObjectNotInPrerequisiteState(format!(
                "policy {widening} would widen tenant isolation: create it AS RESTRICTIVE"
            ))
            .raise();
        }
    });
}

/// Removes the policy, the TRUNCATE guard and row-level security, from the partitions too. The
/// tenant_id column, its foreign key and index stay: they hold data.
#[pg_extern(volatile)]
fn disable_tenant_isolation(tbl: Option<PgRelation>) -> bool {
    let tbl = table_oid(tbl);
    let name = owned_table(tbl);
    as_extension_owner(|| {
        let mut tables = partitions(tbl);
        tables.insert(0, (tbl, name));
        for (_, name) in tables {
            write(&format!("DROP POLICY IF EXISTS {POLICY} ON {name}"), &[]);
            write(&format!("DROP TRIGGER IF EXISTS {TRUNCATE_GUARD} ON {name}"), &[]);
            write(&format!("ALTER TABLE {name} NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY"), &[]);
        }
    });
    true
}
