-- What row-level security alone leaves open on a tenant-isolated table (src/policies.rs).

-- TRUNCATE skips row-level security: on an isolated table it would empty every tenant's rows.
-- enable_tenant_isolation puts this BEFORE TRUNCATE trigger on the table and its partitions.
CREATE FUNCTION nile_auth._refuse_truncate() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT nile_auth.is_trusted_backend() THEN
        RAISE EXCEPTION 'TRUNCATE of tenant-isolated table %.% is for trusted backends only', TG_TABLE_SCHEMA, TG_TABLE_NAME
              USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END $$;

-- Partitions and inheriting tables created or attached after enable_tenant_isolation are
-- isolated like the rest of their tree (CREATE SCHEMA counts: it can create tables), a
-- disabled guard is switched back on, and a permissive policy added to an isolated table, or a
-- change to its tenant_isolation policy, is refused. An event trigger,
-- so that it holds whoever runs the DDL; SECURITY DEFINER, because the functions it calls are
-- not for PUBLIC.
CREATE FUNCTION nile_auth._guard_isolated_tables() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    command record;
BEGIN
    FOR command IN SELECT classid, objid, command_tag FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
        IF command.classid = 'pg_catalog.pg_class'::pg_catalog.regclass THEN
            PERFORM nile_auth._guard_isolated_tree(command.objid, command.command_tag = 'CREATE TABLE');
        ELSIF command.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass THEN
            PERFORM nile_auth._check_new_policy(command.objid);
        END IF;
    END LOOP;
END $$;
REVOKE EXECUTE ON FUNCTION nile_auth._guard_isolated_tree(oid, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nile_auth._check_new_policy(oid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nile_auth._guard_isolated_tables() FROM PUBLIC;
CREATE EVENT TRIGGER nile_auth_guard_isolated_tables ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE SCHEMA', 'CREATE POLICY', 'ALTER POLICY')
    EXECUTE FUNCTION nile_auth._guard_isolated_tables();
