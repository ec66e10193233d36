SELECT nile_auth.login(:email, :password);
