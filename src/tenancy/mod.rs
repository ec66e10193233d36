//! Tenancy: `context` is the hot path (the current tenant, membership checks, access), `manage`
//! the tenant and membership functions.

pub mod context;
pub mod manage;
