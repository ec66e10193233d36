SELECT id, payload FROM items ORDER BY id LIMIT 50;
