-- Row-level security on the public tables. Application roles may SELECT them; what they see:
--   trusted backend (no token; a superuser or a member of nile_auth_backend): everything;
--   end user: tenants they belong to, memberships of their current tenant and their own, and
--   users who share a live tenant with them (themselves included); with a token limited to one
--   tenant (a tenant API key), only what concerns that tenant.
-- Nobody but the extension's functions writes these tables.

-- The caller's live tenants and the users sharing one with them (with a token limited to one
-- tenant, from a tenant API key: that tenant only). SECURITY DEFINER so that a policy on
-- tenant_users need not query tenant_users under its own policy; wrapped in a scalar subquery
-- in the policies, so each runs once per query, not once per row.
CREATE FUNCTION nile_auth._my_tenant_ids() RETURNS uuid[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT COALESCE(array_agg(tu.tenant_id), '{}')
      FROM nile_auth.tenant_users tu JOIN nile_auth.tenants t ON t.id = tu.tenant_id
     WHERE tu.user_id = nile_auth.user_id() AND tu.deleted IS NULL AND t.deleted IS NULL
       AND tu.tenant_id = COALESCE(nile_auth._token_tenant(), tu.tenant_id)
$$;
CREATE FUNCTION nile_auth._visible_user_ids() RETURNS uuid[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT COALESCE(array_agg(DISTINCT other.user_id), '{}')
      FROM nile_auth.tenant_users mine
      JOIN nile_auth.tenant_users other ON other.tenant_id = mine.tenant_id
      JOIN nile_auth.tenants t ON t.id = mine.tenant_id
     WHERE mine.user_id = nile_auth.user_id()
       AND mine.deleted IS NULL AND other.deleted IS NULL AND t.deleted IS NULL
       AND mine.tenant_id = COALESCE(nile_auth._token_tenant(), mine.tenant_id)
$$;

GRANT SELECT ON nile_auth.users, nile_auth.tenants, nile_auth.tenant_users TO PUBLIC;
ALTER TABLE nile_auth.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE nile_auth.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE nile_auth.tenant_users ENABLE ROW LEVEL SECURITY;

CREATE POLICY visible_tenants ON nile_auth.tenants FOR SELECT
    USING (nile_auth.is_trusted_backend() OR id = ANY ((SELECT nile_auth._my_tenant_ids())::uuid[]));
CREATE POLICY visible_memberships ON nile_auth.tenant_users FOR SELECT
    USING (nile_auth.is_trusted_backend()
           OR (user_id = nile_auth.user_id() AND tenant_id = COALESCE(nile_auth._token_tenant(), tenant_id))
           OR tenant_id = nile_auth.tenant_id());
CREATE POLICY visible_users ON nile_auth.users FOR SELECT
    USING (nile_auth.is_trusted_backend() OR id = nile_auth.user_id()
           OR id = ANY ((SELECT nile_auth._visible_user_ids())::uuid[]));
