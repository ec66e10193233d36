//! nile_auth: users, tenants and tenant isolation inside PostgreSQL.
//!
//! Layout: `sql/schema.sql` (tables, grants) runs first, the Rust functions follow,
//! `sql/builtin_policies.sql` (row-level security on the public tables) and
//! `sql/listings.sql` (listings written in PL/pgSQL), `sql/isolation_guards.sql` (the TRUNCATE
//! guard and the event trigger for partitions) and `sql/teams.sql` (row-level security on teams,
//! team_ids()) once the functions they call exist, and
//! `sql/finalize.sql` (privileges on functions, triggers, the first signing key) last.

use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

mod accounts;
mod admin;
mod apikeys;
mod audit;
mod cache;
mod caller;
mod db;
mod deletion;
mod detached;
mod email;
mod errors;
mod identity;
mod invalidation;
mod json_input;
mod keys;
mod lockout;
mod one_time_tokens;
mod passwords;
mod policies;
mod privilege;
mod probe;
mod random;
mod sessions;
mod settings;
mod tenancy;
mod tokens;
mod users;

pgrx::extension_sql_file!("../sql/schema.sql", name = "schema", requires = [uuid_generate_v7]);
pgrx::extension_sql_file!(
    "../sql/builtin_policies.sql",
    name = "builtin_policies",
    requires = [
        "schema",
        identity::user_id_sql,
        identity::token_tenant_sql,
        tenancy::context::tenant_id_sql,
        tenancy::context::is_trusted_backend,
        tenancy::visibility::sees_tenant,
        tenancy::visibility::sees_user
    ]
);
pgrx::extension_sql_file!(
    "../sql/listings.sql",
    name = "listings",
    requires = ["schema", tenancy::context::require_tenant_id_sql]
);
pgrx::extension_sql_file!(
    "../sql/isolation_guards.sql",
    name = "isolation_guards",
    requires = [
        tenancy::context::is_trusted_backend,
        policies::guard_isolated_tree,
        policies::check_new_policy
    ]
);
pgrx::extension_sql_file!(
    "../sql/teams.sql",
    name = "teams",
    requires = ["schema", identity::user_id_sql, tenancy::context::tenant_id_sql, tenancy::context::is_trusted_backend]
);
pgrx::extension_sql_file!("../sql/citus.sql", name = "citus", requires = ["schema"]);
pgrx::extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

/// A time-ordered (version 7) UUID: the default for every id, so new rows land at the right edge
/// of the primary key index.
#[pg_extern(volatile, parallel_safe)]
fn uuid_generate_v7() -> pgrx::Uuid {
    db::to_pg(uuid::Uuid::now_v7())
}

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    settings::register();
    lockout::init();
    probe::register_invalidation_callback();
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["shared_preload_libraries = 'nile_auth'"]
    }
}
