\set id :base + random(0, :rpt - 1)
SELECT payload FROM items WHERE id = :id;
