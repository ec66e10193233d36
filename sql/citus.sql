-- Scale-out on Citus (docs/scale-out.md). nile_auth.distribute() makes every nile_auth table a
-- reference table: one copy on every node, coordinator included, so each node verifies tokens and
-- checks memberships from its own copy (src/probe.rs reads that copy, the shard, directly).
-- Application tables are distributed by tenant_id by their owners.
--
-- CREATE EXTENSION, which Citus runs on every node, left each node its own tables and its own
-- signing keys. The workers' tables become Citus's shells of the coordinator's, so their rows
-- (their keys) go; the coordinator's rows are copied into the shards, so its keys sign and
-- verify on every node. Foreign keys are dropped while the tables are converted (Citus would
-- otherwise convert their neighbours first, one table at a time) and put back once all are.

-- One node's preparation, run by distribute() on the coordinator and through Citus on each
-- worker: drops the foreign keys of nile_auth tables Citus does not know yet and, on a worker
-- (`forget_rows`), empties them. Tables Citus already knows are left alone (on a worker, a
-- TRUNCATE of one would empty it on every node).
CREATE FUNCTION nile_auth._prepare_node_for_citus(forget_rows boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fk record;
    local_tables text;
BEGIN
    FOR fk IN SELECT con.conrelid::regclass AS rel, con.conname
                FROM pg_constraint con
               WHERE con.contype = 'f' AND con.connamespace = 'nile_auth'::regnamespace
                 AND NOT EXISTS (SELECT FROM pg_dist_partition p WHERE p.logicalrelid = con.conrelid)
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.rel, fk.conname);
    END LOOP;
    IF forget_rows THEN
        SELECT string_agg(c.oid::regclass::text, ', ') INTO local_tables
          FROM pg_class c
         WHERE c.relnamespace = 'nile_auth'::regnamespace AND c.relkind = 'r'
           AND NOT EXISTS (SELECT FROM pg_dist_partition p WHERE p.logicalrelid = c.oid);
        IF local_tables IS NOT NULL THEN
            EXECUTE 'TRUNCATE ' || local_tables;
        END IF;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION nile_auth._prepare_node_for_citus(boolean) FROM PUBLIC;

-- Returns how many tables it distributed: 0 when they already were (it may be run again, for
-- example after a failure on a worker was fixed).
-- The triggers (cache invalidation, key replacement) run on each node's copy and write nothing
-- but that copy (sql/finalize.sql): what citus.enable_unsafe_triggers asks to be sure of. The
-- NOTICEs of TRUNCATE and Citus's copying are not shown.
CREATE FUNCTION nile_auth.distribute() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET citus.enable_unsafe_triggers = on
    SET client_min_messages = warning AS $$
DECLARE
    tables regclass[];
    known integer;
    add_fks text[];
    add_fk text;
    failure text;
    t regclass;
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        RAISE EXCEPTION 'permission denied: nile_auth.distribute() is for superusers' USING ERRCODE = '42501';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'Citus is not installed in this database' USING ERRCODE = '55000',
            HINT = 'Run CREATE EXTENSION citus and add the worker nodes first (docs/scale-out.md).';
    END IF;
    IF NOT citus_is_coordinator() THEN
        RAISE EXCEPTION 'nile_auth.distribute() runs on the coordinator' USING ERRCODE = '55000';
    END IF;
    -- Without a copy on the coordinator, its checks would find no keys and no members.
    IF NOT EXISTS (SELECT FROM pg_dist_node WHERE groupid = 0) THEN
        RAISE EXCEPTION 'the coordinator is not in the Citus metadata' USING ERRCODE = '55000',
            HINT = 'Run SELECT citus_set_coordinator_host(''<its host>'', <its port>) first.';
    END IF;

    SELECT array_agg(c.oid::regclass ORDER BY c.relname),
           count(*) FILTER (WHERE EXISTS (SELECT FROM pg_dist_partition p WHERE p.logicalrelid = c.oid))
      INTO tables, known
      FROM pg_class c
     WHERE c.relnamespace = 'nile_auth'::regnamespace AND c.relkind = 'r';
    IF EXISTS (SELECT FROM pg_dist_partition p
                WHERE p.logicalrelid = ANY (tables) AND (p.partmethod <> 'n' OR p.repmodel <> 't')) THEN
        RAISE EXCEPTION 'a nile_auth table is distributed, but not as a reference table' USING ERRCODE = '55000',
            HINT = 'Undistribute it (undistribute_table) and run nile_auth.distribute() again.';
    END IF;
    IF known = cardinality(tables) THEN
        RETURN 0;
    ELSIF known > 0 THEN
        RAISE EXCEPTION 'only some nile_auth tables are reference tables' USING ERRCODE = '55000',
            HINT = 'Undistribute them (undistribute_table) and run nile_auth.distribute() again.';
    END IF;

    SELECT array_agg(format('ALTER TABLE %s ADD CONSTRAINT %I %s', con.conrelid::regclass, con.conname,
                            pg_get_constraintdef(con.oid)))
      INTO add_fks
      FROM pg_constraint con
     WHERE con.contype = 'f' AND con.conrelid = ANY (tables);
    SELECT string_agg(format('%s:%s: %s', w.nodename, w.nodeport, w.result), '; ') INTO failure
      FROM run_command_on_workers('SELECT nile_auth._prepare_node_for_citus(true)') w
     WHERE NOT w.success;
    IF failure IS NOT NULL THEN
        RAISE EXCEPTION 'could not prepare every worker: %', failure USING ERRCODE = '55000',
            HINT = 'nile_auth must be installed on every worker (CREATE EXTENSION on the coordinator installs it there).';
    END IF;
    PERFORM nile_auth._prepare_node_for_citus(false);

    FOREACH t IN ARRAY tables LOOP
        PERFORM create_reference_table(t);
    END LOOP;
    FOREACH add_fk IN ARRAY COALESCE(add_fks, '{}') LOOP
        EXECUTE add_fk;
    END LOOP;
    -- The coordinator's rows are in the shards now; the tables' own storage would be stale.
    FOREACH t IN ARRAY tables LOOP
        PERFORM truncate_local_data_after_distributing_table(t);
    END LOOP;
    RETURN cardinality(tables);
END
$$;
REVOKE EXECUTE ON FUNCTION nile_auth.distribute() FROM PUBLIC;
