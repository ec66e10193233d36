SELECT count(*) FROM items_plain WHERE tenant_id = :tid;
