SELECT id, payload FROM items_plain WHERE tenant_id = :tid ORDER BY id LIMIT 50;
