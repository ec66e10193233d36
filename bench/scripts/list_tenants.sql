SELECT count(*) FROM nile_auth.list_tenants();
