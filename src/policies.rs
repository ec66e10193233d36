//! One call to make an application table tenant-isolated.
//!
//! `enable_tenant_isolation(tbl)` gives the table a `tenant_id uuid NOT NULL REFERENCES
//! nile_auth.tenants(id) DEFAULT nile_auth.tenant_id()`, enables and FORCEs row-level security
//! (so the owner is bound too), and creates the single policy
//!   tenant_isolation FOR ALL USING (tenant_id = nile_auth.tenant_id())
//!                    WITH CHECK (tenant_id = nile_auth._require_tenant_id())
//! plus an index leading with tenant_id. The check raises 55000 "no tenant is set" for a write
//! with no tenant, where `tenant_id()` (NULL) would fail it as a policy violation that says
//! nothing of the cause; reads with no tenant still see no rows. Both are plain STABLE calls
//! with no subquery, which keeps the policy valid when the table is later distributed by
//! tenant_id (Citus).
//!
//! What row-level security alone leaves open is closed here too: every table below the isolated
//! one (partitions, inheriting tables) gets the same policy, now and, through the event trigger
//! in sql/isolation_guards.sql, when created or attached later; TRUNCATE, which skips row-level
//! security, is refused to all but trusted backends; another permissive policy, which would
//! widen the isolation, is refused; and each unique key without tenant_id is reported (a 23505
//! tells one tenant another's values exist).

use crate::db::{citus_installed, read_all, read_one, read_row, write};
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
    if owns {
        // Held to the end of the transaction: the name below stays this table's while the DDL
        // that uses it runs (no rename-and-replace in between).
        // SAFETY: a lock on a relation the caller owns, released at transaction end.
        unsafe { pg_sys::LockRelationOid(tbl, pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE) };
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
    let inherits = as_extension_owner(|| {
        read_one::<bool>("SELECT true FROM pg_catalog.pg_inherits WHERE inhrelid = $1 LIMIT 1", &[tbl.into()])
    });
    if inherits == Some(true) {
        AuthError::InvalidParameter(format!(
            "{name} is a partition or inherits from another table: isolate the table at the top of its tree"
        ))
        .raise();
    }
    as_extension_owner(|| {
        let mut tree: Vec<pg_sys::Oid> = descendants(tbl).into_iter().map(|(oid, _)| oid).collect();
        tree.push(tbl);
        refuse_permissive_policies(&tree, &name);
        let column = read_row(
            "SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull AND pg_get_expr(d.adbin, d.adrelid) = 'nile_auth.tenant_id()'
               FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
              WHERE a.attrelid = $1 AND a.attname = 'tenant_id' AND NOT a.attisdropped",
            &[tbl.into()],
            |row| Ok((row.get::<String>(1)?, row.get::<bool>(2)?)),
        );
        match column.as_ref().map(|(kind, ready)| (kind.as_deref(), *ready == Some(true))) {
            // Already as wanted: nothing to alter (Citus refuses any ALTER of a table's
            // distribution column, so a table distributed by tenant_id is declared this way).
            Some((Some("uuid"), true)) => {}
            None => write(
                &format!("ALTER TABLE {name} ADD COLUMN tenant_id uuid NOT NULL DEFAULT nile_auth.tenant_id()"),
                &[],
            ),
            Some((Some("uuid"), false)) => write(
                &format!(
                    "ALTER TABLE {name} ALTER COLUMN tenant_id SET DEFAULT nile_auth.tenant_id(),
                                        ALTER COLUMN tenant_id SET NOT NULL"
                ),
                &[],
            ),
            Some((other, _)) => {
                AuthError::InvalidParameter(format!("{name}.tenant_id must be uuid, not {}", other.unwrap_or_default())).raise()
            }
        }
        // On Citus, a foreign key from a table Citus does not know yet to the reference table
        // nile_auth.tenants would make it a Citus local table, which its owner could then not
        // distribute (Citus re-creates the key as the caller, and that needs REFERENCES on
        // nile_auth.tenants, which application roles lack). Calling this again after
        // create_distributed_table adds it.
        if citus_table_pending(tbl) {
            pgrx::notice!(
                "{name} is not a Citus table yet: call enable_tenant_isolation again after create_distributed_table to add its foreign key to nile_auth.tenants"
            );
        } else {
            let has_fk = read_one::<bool>(
                "SELECT true FROM pg_constraint con JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
                  WHERE con.conrelid = $1 AND con.contype = 'f' AND array_length(con.conkey, 1) = 1
                    AND a.attname = 'tenant_id' AND con.confrelid = 'nile_auth.tenants'::regclass",
                &[tbl.into()],
            );
            if has_fk != Some(true) {
                write(&format!("ALTER TABLE {name} ADD FOREIGN KEY (tenant_id) REFERENCES nile_auth.tenants (id)"), &[]);
            }
        }
        // A policy of that name edited by hand is put back as documented (bind replaces it).
        bind(tbl, &name);
        for (member, member_name) in descendants(tbl) {
            bind(member, &member_name);
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
                                   AND a.attnum = ANY ((i.indkey::pg_catalog.int2[])[0:i.indnkeyatts - 1]))
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

/// The policy's expressions as enable_tenant_isolation creates them, as pg_get_expr shows them.
const POLICY_USING: &str = "(tenant_id = nile_auth.tenant_id())";
const POLICY_CHECK: &str = "(tenant_id = nile_auth._require_tenant_id())";

/// Whether `tbl` has a policy named tenant_isolation, and whether it is exactly ours (for all
/// commands and roles, permissive, the documented expressions).
fn policy_state(tbl: pg_sys::Oid) -> Option<bool> {
    read_one::<bool>(
        "SELECT p.polpermissive AND p.polcmd = '*' AND p.polroles = '{0}'
                AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) = $3
                AND pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) = $4
           FROM pg_catalog.pg_policy p WHERE p.polrelid = $1 AND p.polname = $2",
        &[tbl.into(), POLICY.into(), POLICY_USING.into(), POLICY_CHECK.into()],
    )
}

/// Every table below `tbl`, through partitioning or inheritance (pg_inherits holds both), at any
/// depth, with its name as SQL.
fn descendants(tbl: pg_sys::Oid) -> Vec<(pg_sys::Oid, String)> {
    Spi::connect(|client| {
        client
            .select(
                "WITH RECURSIVE d(relid) AS (
                     SELECT inhrelid FROM pg_catalog.pg_inherits WHERE inhparent = $1
                     UNION
                     SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN d ON i.inhparent = d.relid)
                 SELECT d.relid, d.relid::pg_catalog.regclass::pg_catalog.text FROM d ORDER BY d.relid",
                None,
                &[tbl.into()],
            )?
            .map(|row| Ok((row.get::<pg_sys::Oid>(1)?, row.get::<String>(2)?)))
            .filter_map(|r: pgrx::spi::SpiResult<_>| r.map(|(oid, name)| oid.zip(name)).transpose())
            .collect::<pgrx::spi::SpiResult<Vec<_>>>()
    })
    .or_raise()
    .into_iter()
    .filter(|(oid, _)| matches!(relkind(*oid), pg_sys::RELKIND_RELATION | pg_sys::RELKIND_PARTITIONED_TABLE))
    .collect()
}

// Relations are read through the catalog caches, not SQL on pg_class: Citus filters its shards
// out of SQL reads of pg_class (citus.show_shards_for_app_name_prefixes), and shards are tables
// the guard keeps too.

/// 0 when there is no such relation.
fn relkind(rel: pg_sys::Oid) -> u8 {
    // SAFETY: a catalog-cache lookup inside a transaction.
    unsafe { pg_sys::get_rel_relkind(rel) as u8 }
}

/// Whether `rel` has row-level security enabled and forced.
fn row_security_forced(rel: pg_sys::Oid) -> bool {
    // SAFETY: a catalog-cache lookup inside a transaction; the tuple is a pg_class row, released
    // before returning.
    unsafe {
        let tuple = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::RELOID as _, rel.into());
        if tuple.is_null() {
            return false;
        }
        let class = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_class>(tuple);
        let forced = (*class).relrowsecurity && (*class).relforcerowsecurity;
        pg_sys::ReleaseSysCache(tuple);
        forced
    }
}

/// Whether nile_auth.tenants is a Citus table (`distribute()` ran) and `rel` is not one yet.
fn citus_table_pending(rel: pg_sys::Oid) -> bool {
    citus_installed()
        && read_one::<bool>(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid = 'nile_auth.tenants'::pg_catalog.regclass)
                    AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1)",
            &[rel.into()],
        ) == Some(true)
}

/// Whether `rel` is a shard of a Citus table (Citus's own catalog says so).
fn citus_shard(rel: pg_sys::Oid) -> bool {
    citus_installed()
        && read_one::<bool>("SELECT pg_catalog.relation_is_a_known_shard($1)", &[rel.into()]) == Some(true)
}

/// Runs `write` with citus.enable_unsafe_triggers on, where Citus is loaded: Citus refuses
/// triggers on its tables without it, and the TRUNCATE guard is one it can allow (it only
/// refuses). Set for this call only, as a function's SET clause would be.
fn allowing_citus_triggers(write: impl FnOnce()) {
    const NAME: &std::ffi::CStr = c"citus.enable_unsafe_triggers";
    // SAFETY: reads a setting by name; NULL when Citus is not loaded.
    if unsafe { pg_sys::GetConfigOption(NAME.as_ptr(), true, false) }.is_null() {
        return write();
    }
    // SAFETY: a GUC nest level opened and closed around `write`; an error in between is undone
    // with the (sub)transaction, which pops the level.
    unsafe {
        let level = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            NAME.as_ptr(),
            c"on".as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        write();
        pg_sys::AtEOXact_GUC(true, level);
    }
}

fn relation_name(oid: pg_sys::Oid) -> String {
    read_one::<String>("SELECT $1::pg_catalog.regclass::pg_catalog.text", &[oid.into()]).unwrap_or_default()
}

/// True when `rel` or a table above it (partitioning or inheritance) is tenant-isolated.
fn in_isolated_tree(rel: pg_sys::Oid) -> bool {
    read_one::<bool>(
        "WITH RECURSIVE a(relid) AS (
             SELECT $1::pg_catalog.oid
             UNION
             SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN a ON i.inhrelid = a.relid)
         SELECT true FROM a JOIN pg_catalog.pg_policy p ON p.polrelid = a.relid AND p.polname = $2 LIMIT 1",
        &[rel.into(), POLICY.into()],
    ) == Some(true)
}

/// Refuses other permissive policies on `tbl`: PostgreSQL ORs permissive policies, so any of
/// them would widen the isolation. Restrictive ones only narrow it.
fn refuse_permissive_policies(tables: &[pg_sys::Oid], name: &str) {
    let others = read_all::<String>(
        "SELECT p.polname || ' on ' || p.polrelid::pg_catalog.regclass::pg_catalog.text
           FROM pg_catalog.pg_policy p
          WHERE p.polrelid = ANY ($1) AND p.polpermissive AND p.polname <> $2
          ORDER BY 1",
        &[tables.to_vec().into(), POLICY.into()],
    );
    if !others.is_empty() {
        AuthError::ObjectNotInPrerequisiteState(format!(
            "{name} has other permissive policies, which would widen tenant isolation: {}; drop them or recreate them AS RESTRICTIVE",
            others.join(", ")
        ))
        .raise();
    }
}

/// The policy, row-level security and the TRUNCATE guard on one table, each added (or put
/// back) only if missing; returns whether the policy was. The event trigger runs this again
/// for DDL this very function issues, and finds nothing left to do.
fn bind(tbl: pg_sys::Oid, name: &str) -> bool {
    let policy = policy_state(tbl);
    if policy == Some(false) {
        write(&format!("DROP POLICY {POLICY} ON {name}"), &[]);
    }
    if policy != Some(true) {
        write(
            &format!("CREATE POLICY {POLICY} ON {name} FOR ALL USING {POLICY_USING} WITH CHECK {POLICY_CHECK}"),
            &[],
        );
    }
    guard(tbl, name, true);
    policy != Some(true)
}

/// Row-level security on and forced, and the TRUNCATE guard enabled (and created when
/// `create_trigger`): what an isolated table needs besides its policy.
fn guard(tbl: pg_sys::Oid, name: &str, create_trigger: bool) {
    if !row_security_forced(tbl) {
        write(&format!("ALTER TABLE {name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"), &[]);
    }
    let trigger = read_one::<bool>(
        "SELECT tgenabled IN ('O', 'A') FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = $2",
        &[tbl.into(), TRUNCATE_GUARD.into()],
    );
    match trigger {
        Some(true) => {}
        Some(false) => {
            allowing_citus_triggers(|| write(&format!("ALTER TABLE {name} ENABLE ALWAYS TRIGGER {TRUNCATE_GUARD}"), &[]))
        }
        None if create_trigger => allowing_citus_triggers(|| {
            write(
                &format!(
                    "CREATE TRIGGER {TRUNCATE_GUARD} BEFORE TRUNCATE ON {name}
                       FOR EACH STATEMENT EXECUTE FUNCTION nile_auth._refuse_truncate()"
                ),
                &[],
            )
        }),
        None => {}
    }
}

/// For the event trigger, after CREATE TABLE (`created`) or ALTER TABLE of `rel` in an isolated
/// tree: a new table (PARTITION OF, INHERITS) and every table now below `rel` (ATTACH
/// PARTITION, INHERIT) are isolated too, and `rel` itself keeps row-level security and an
/// enabled TRUNCATE guard. An ALTER TABLE never creates `rel`'s own policy: pg_restore runs
/// ALTER TABLE ... ENABLE ROW LEVEL SECURITY before it creates some tables' policies itself.
#[pg_extern(volatile, name = "_guard_isolated_tree")]
fn guard_isolated_tree(rel: pg_sys::Oid, created: bool) {
    as_extension_owner(|| {
        let kind = relkind(rel);
        if (kind != pg_sys::RELKIND_RELATION && kind != pg_sys::RELKIND_PARTITIONED_TABLE) || !in_isolated_tree(rel) {
            return;
        }
        let name = relation_name(rel);
        let mut members = descendants(rel);
        if created {
            members.insert(0, (rel, name.clone()));
        } else {
            // A missing guard is created too (a table joining with ALTER TABLE … INHERIT), but
            // not on a connection Citus opened to re-create a table from its definition: its
            // ALTER TABLE comes before its own CREATE TRIGGER, which must not find one. Shards
            // are the exception: Citus copies the policy to them but not the TRUNCATE trigger,
            // and a shard can be truncated on its node (citus.enable_manual_changes_to_shards).
            guard(rel, &name, !crate::caller::citus_connection() || citus_shard(rel));
        }
        let mut newly_bound = Vec::new();
        for (member, member_name) in members {
            if bind(member, &member_name) {
                newly_bound.push(member);
            }
        }
        // A table joining the tree must not bring a policy that would widen it.
        refuse_permissive_policies(&newly_bound, &name);
    });
}

/// For the event trigger: a permissive policy created on an isolated table (or below one) is
/// refused, as is any change to the tenant_isolation policy itself.
#[pg_extern(volatile, name = "_check_new_policy")]
fn check_new_policy(policy: pg_sys::Oid) {
    as_extension_owner(|| {
        let Some((table, policy_name, permissive)) = crate::db::read_row(
            "SELECT p.polrelid, p.polname::pg_catalog.text, p.polpermissive FROM pg_catalog.pg_policy p WHERE p.oid = $1",
            &[policy.into()],
            |row| Ok((row.get::<pg_sys::Oid>(1)?, row.get::<String>(2)?, row.get::<bool>(3)?)),
        ) else {
            return;
        };
        let (Some(table), Some(policy_name)) = (table, policy_name) else { return };
        if !in_isolated_tree(table) {
            return;
        }
        let name = relation_name(table);
        if policy_name == POLICY {
            if policy_state(table) == Some(false) {
                AuthError::ObjectNotInPrerequisiteState(format!(
                    "policy {POLICY} on {name} is nile_auth's: change isolation with enable_tenant_isolation or disable_tenant_isolation"
                ))
                .raise();
            }
        } else if permissive == Some(true) {
            AuthError::ObjectNotInPrerequisiteState(format!(
                "policy {policy_name} on {name} would widen tenant isolation: create it AS RESTRICTIVE"
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
        let mut tables = descendants(tbl);
        tables.insert(0, (tbl, name));
        for (_, name) in tables {
            write(&format!("DROP POLICY IF EXISTS {POLICY} ON {name}"), &[]);
            write(&format!("DROP TRIGGER IF EXISTS {TRUNCATE_GUARD} ON {name}"), &[]);
            write(&format!("ALTER TABLE {name} NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY"), &[]);
        }
    });
    true
}
