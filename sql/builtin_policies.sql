-- Row-level security on the public tables. Application roles may SELECT them; what they see:
--   trusted backend (no token; a superuser or a member of nile_auth_backend): everything;
--   end user: tenants they belong to, memberships of their current tenant and their own, and
--   users who share a live tenant with them (themselves included); with a token limited to one
--   tenant (a tenant API key), only what concerns that tenant.
-- Nobody but the extension's functions writes these tables.

-- What end users see is decided per row by nile_auth._sees_tenant and nile_auth._sees_user
-- (src/tenancy/visibility.rs): no scalar subquery in a policy, which Citus refuses.

GRANT SELECT ON nile_auth.users, nile_auth.tenants, nile_auth.tenant_users TO PUBLIC;
ALTER TABLE nile_auth.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE nile_auth.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE nile_auth.tenant_users ENABLE ROW LEVEL SECURITY;

CREATE POLICY visible_tenants ON nile_auth.tenants FOR SELECT
    USING (nile_auth._sees_tenant(id));
CREATE POLICY visible_memberships ON nile_auth.tenant_users FOR SELECT
    USING (nile_auth.is_trusted_backend()
           OR (user_id = nile_auth.user_id() AND tenant_id = COALESCE(nile_auth._token_tenant(), tenant_id))
           OR tenant_id = nile_auth.tenant_id());
CREATE POLICY visible_users ON nile_auth.users FOR SELECT
    USING (nile_auth._sees_user(id));
