\set id :base + random(0, :rpt - 1)
SELECT payload FROM items_plain WHERE tenant_id = :tid AND id = :id;
