-- Teams (src/teams.rs writes them): tenant data, so an application role reads a team and its
-- members only in its current tenant, as with any tenant-isolated table; the trusted backend
-- reads all.
GRANT SELECT ON nile_auth.teams, nile_auth.team_members TO PUBLIC;
ALTER TABLE nile_auth.teams ENABLE ROW LEVEL SECURITY;
ALTER TABLE nile_auth.team_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_teams ON nile_auth.teams FOR SELECT
    USING (nile_auth.is_trusted_backend() OR tenant_id = nile_auth.tenant_id());
CREATE POLICY tenant_team_members ON nile_auth.team_members FOR SELECT
    USING (nile_auth.is_trusted_backend() OR tenant_id = nile_auth.tenant_id());

-- The current user's teams in the current tenant, for application policies:
--   USING (team_id = ANY ((SELECT nile_auth.team_ids())::uuid[]))
-- (the scalar subquery makes it run once per query). Empty with no user or no tenant.
CREATE FUNCTION nile_auth.team_ids() RETURNS uuid[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT COALESCE(array_agg(m.team_id ORDER BY m.team_id), '{}')
      FROM nile_auth.team_members m
     WHERE m.tenant_id = nile_auth.tenant_id() AND m.user_id = nile_auth.user_id()
$$;

