-- Listings written in PL/pgSQL rather than Rust: their rows are stored JSON, which goes to the
-- caller as is (a Rust function would parse and re-serialize every row), and the plan is
-- cached per backend.

-- Members of the current tenant as user JSON, oldest membership first; 55000 when no tenant is
-- set, 42501 when the caller may not use the current tenant.
CREATE FUNCTION nile_auth.list_users() RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    current_tenant uuid := nile_auth._require_tenant_id();
BEGIN
    RETURN QUERY
    SELECT p.profile
      FROM nile_auth.tenant_users tu
      JOIN nile_auth._user_profiles p ON p.id = tu.user_id
     WHERE tu.tenant_id = current_tenant AND tu.deleted IS NULL
     ORDER BY tu.created, p.id;
END
$$;
