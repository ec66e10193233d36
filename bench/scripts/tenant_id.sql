SELECT nile_auth.tenant_id();
