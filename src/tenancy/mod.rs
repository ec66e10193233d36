//! Tenancy: `context` is the hot path (the current tenant, membership checks, roles, access),
//! `manage` the tenant and membership functions, `invitations` and `teams` what is built on
//! memberships, `visibility` what end users see of the built-in tables.

pub mod context;
pub mod invitations;
pub mod manage;
pub mod teams;
pub mod visibility;
