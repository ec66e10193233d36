SELECT count(*) FROM items;
