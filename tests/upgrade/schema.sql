-- A text description of everything nile_auth puts in a database, one fact per line, sorted.
-- The upgrade test prints it for a database updated from the previous release and for a fresh
-- CREATE EXTENSION, and fails on any difference. OIDs never appear: objects are named.
\set QUIET 1
\pset format unaligned
\pset tuples_only on
\pset footer off
WITH ext AS (
    SELECT oid, extnamespace FROM pg_catalog.pg_extension WHERE extname = 'nile_auth'
), acl(object, kind, entry, grantee) AS (
    -- Grants the extension manages, one line per grantee and privilege: to PUBLIC, the owner and
    -- the nile_auth_* roles (filtered below). Grants a DBA gives application roles are theirs.
    SELECT c.oid::regclass::text, 'table acl',
           coalesce(nullif(a.grantee::regrole::text, '-'), 'PUBLIC') || ' ' || a.privilege_type || CASE WHEN a.is_grantable THEN ' WITH GRANT' ELSE '' END, a.grantee
      FROM pg_catalog.pg_class c, ext, LATERAL pg_catalog.aclexplode(c.relacl) a
     WHERE c.relnamespace = ext.extnamespace
    UNION ALL
    SELECT p.oid::regprocedure::text, 'function acl',
           coalesce(nullif(a.grantee::regrole::text, '-'), 'PUBLIC') || ' ' || a.privilege_type, a.grantee
      FROM pg_catalog.pg_proc p, ext,
           LATERAL pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
     WHERE p.pronamespace = ext.extnamespace
    UNION ALL
    SELECT n.nspname, 'schema acl',
           coalesce(nullif(a.grantee::regrole::text, '-'), 'PUBLIC') || ' ' || a.privilege_type, a.grantee
      FROM pg_catalog.pg_namespace n, ext,
           LATERAL pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a
     WHERE n.oid = ext.extnamespace
), facts(object, kind, entry) AS (
    SELECT 'extension nile_auth', 'version', e.extversion || ' relocatable=' || e.extrelocatable
      FROM pg_catalog.pg_extension e WHERE e.extname = 'nile_auth'
    UNION ALL
    -- What belongs to the extension (DROP EXTENSION takes it along; pg_dump leaves it out).
    SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid), 'member', ''
      FROM pg_catalog.pg_depend d, ext
     WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
    UNION ALL
    -- Tables registered with pg_extension_config_dump, and their filters.
    SELECT cfg.rel::regclass::text, 'config dump', coalesce(cfg.filter, '')
      FROM pg_catalog.pg_extension e, LATERAL unnest(e.extconfig, e.extcondition) AS cfg(rel, filter)
     WHERE e.extname = 'nile_auth'
    UNION ALL
    -- Functions: the whole definition (arguments, result, language, volatility, strictness,
    -- parallel safety, SECURITY DEFINER, cost, SET search_path, body or C symbol), one line each.
    SELECT p.oid::regprocedure::text, 'function',
           lpad(l.n::text, 3, '0') || ' ' || l.line
      FROM pg_catalog.pg_proc p, ext,
           LATERAL regexp_split_to_table(pg_catalog.pg_get_functiondef(p.oid), E'\n') WITH ORDINALITY AS l(line, n)
     WHERE p.pronamespace = ext.extnamespace AND p.prokind IN ('f', 'p', 'w')
    UNION ALL
    SELECT p.oid::regprocedure::text, 'function owner', p.proowner::regrole::text
      FROM pg_catalog.pg_proc p, ext WHERE p.pronamespace = ext.extnamespace
    UNION ALL
    SELECT p.oid::regprocedure::text, 'aggregate', p.prokind::text
      FROM pg_catalog.pg_proc p, ext WHERE p.pronamespace = ext.extnamespace AND p.prokind = 'a'
    UNION ALL
    -- Relations: kind, owner, row-level security, options.
    SELECT c.oid::regclass::text, 'relation',
           'kind=' || c.relkind::text || ' owner=' || c.relowner::regrole || ' persistence=' || c.relpersistence::text
           || ' rls=' || c.relrowsecurity || ' force_rls=' || c.relforcerowsecurity
           || ' options=' || coalesce(c.reloptions::text, '{}')
      FROM pg_catalog.pg_class c, ext
     WHERE c.relnamespace = ext.extnamespace AND c.relkind <> 't'
    UNION ALL
    -- Columns, in order, with type, nullability, default, identity, generation and collation.
    SELECT c.oid::regclass::text, 'column',
           -- The position among live columns: a column dropped by an upgrade leaves a gap in attnum.
           lpad((row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum))::text, 3, '0') || ' ' || a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
           || coalesce(' DEFAULT ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), '')
           || CASE WHEN a.attidentity <> '' THEN ' IDENTITY ' || a.attidentity::text ELSE '' END
           || CASE WHEN a.attgenerated <> '' THEN ' GENERATED ' || a.attgenerated::text ELSE '' END
           || CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                   THEN ' COLLATE ' || a.attcollation::regcollation ELSE '' END
      FROM pg_catalog.pg_class c
      JOIN ext ON c.relnamespace = ext.extnamespace
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
      LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
    UNION ALL
    -- Views, by their definition.
    SELECT c.oid::regclass::text, 'view', l.line
      FROM pg_catalog.pg_class c, ext,
           LATERAL regexp_split_to_table(pg_catalog.pg_get_viewdef(c.oid, true), E'\n') AS l(line)
     WHERE c.relnamespace = ext.extnamespace AND c.relkind IN ('v', 'm')
    UNION ALL
    -- Indexes (the definition names the table, the columns, the method and any predicate).
    SELECT i.indexrelid::regclass::text, 'index', pg_catalog.pg_get_indexdef(i.indexrelid)
      FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid JOIN ext ON c.relnamespace = ext.extnamespace
    UNION ALL
    -- Constraints on the extension's tables.
    SELECT con.conrelid::regclass::text, 'constraint', con.conname || ' ' || pg_catalog.pg_get_constraintdef(con.oid)
      FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
      JOIN ext ON c.relnamespace = ext.extnamespace
    UNION ALL
    -- Triggers (not the internal ones behind foreign keys), with their enabled state.
    SELECT tg.tgrelid::regclass::text, 'trigger', pg_catalog.pg_get_triggerdef(tg.oid) || ' enabled=' || tg.tgenabled::text
      FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
      JOIN ext ON c.relnamespace = ext.extnamespace
     WHERE NOT tg.tgisinternal
    UNION ALL
    -- Row-level security policies.
    SELECT pol.polrelid::regclass::text, 'policy',
           pol.polname || ' cmd=' || pol.polcmd::text || ' permissive=' || pol.polpermissive
           || ' roles=' || (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::regrole::text END, ',' ORDER BY 1)
                              FROM unnest(pol.polroles) r)
           || ' using=' || coalesce(pg_catalog.pg_get_expr(pol.polqual, pol.polrelid), '')
           || ' check=' || coalesce(pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid), '')
      FROM pg_catalog.pg_policy pol JOIN pg_catalog.pg_class c ON c.oid = pol.polrelid
      JOIN ext ON c.relnamespace = ext.extnamespace
    UNION ALL
    -- Comments on anything in the extension.
    SELECT pg_catalog.pg_describe_object(d.classoid, d.objoid, d.objsubid), 'comment', d.description
      FROM pg_catalog.pg_description d
      JOIN pg_catalog.pg_depend dep ON dep.classid = d.classoid AND dep.objid = d.objoid AND dep.deptype = 'e'
      JOIN ext ON dep.refobjid = ext.oid AND dep.refclassid = 'pg_catalog.pg_extension'::regclass
    UNION ALL
    SELECT acl.object, acl.kind, acl.entry FROM acl
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = acl.grantee
     WHERE acl.grantee = 0 OR r.rolsuper OR r.rolname LIKE 'nile\_auth\_%'
)
SELECT kind || ' | ' || object || ' | ' || entry
  FROM facts
 ORDER BY kind COLLATE "C", object COLLATE "C", entry COLLATE "C";
