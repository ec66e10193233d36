SELECT nile_auth._argon2_verify(:password, :phc);
