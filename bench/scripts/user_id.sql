SELECT nile_auth.user_id();
