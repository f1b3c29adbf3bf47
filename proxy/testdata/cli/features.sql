-- psql features, run through the proxy and directly (each in a fresh database): the outputs
-- must be identical. Covers catalog queries (\d), Parse/Describe without Execute (\gdesc),
-- cursors (FETCH_COUNT), \gset/\gexec/\if, combined queries (\;), notices, notifications,
-- ParameterStatus (SET, \encoding), SQL-level PREPARE, savepoints and errors.
\set ON_ERROR_STOP 0
SET application_name = 'features';
SHOW application_name;
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[]);
CREATE INDEX items_name ON items (name);
INSERT INTO items SELECT g, 'item ' || g, g * 1.25, ARRAY['t' || g % 3, 'x'] FROM generate_series(1, 3000) g;
\d items
SELECT id, name, price FROM items WHERE id <= 3 \gdesc
SELECT count(*) AS n, sum(price) AS total FROM items \gset
\echo n = :n, total = :total
SELECT :n > 0 AS nonempty \gset
\if :nonempty
\echo 'the table is not empty'
\else
\echo 'the table is empty'
\endif
SELECT format('SELECT %s AS generated', g) FROM generate_series(1, 3) g \gexec
\set FETCH_COUNT 250
SELECT id, name, price, tags FROM items WHERE id <= 1000 ORDER BY id;
SELECT nosuchcolumn FROM items;
\unset FETCH_COUNT
SELECT 1 AS one \; SELECT 2 AS two \; SELECT 3 AS three;
\x on
SELECT * FROM items WHERE id = 7;
\x off
SELECT name, tag, count(*) FROM items, unnest(tags) tag WHERE id <= 6 GROUP BY 1, 2 ORDER BY 1, 2 \crosstabview
\pset format csv
SELECT id, name, price FROM items WHERE id % 500 = 0 ORDER BY id;
\pset format aligned
DO $$ BEGIN RAISE NOTICE 'notice number %', 42; RAISE WARNING 'a warning'; END $$;
LISTEN features_channel;
NOTIFY features_channel, 'hello';
UNLISTEN features_channel;
PREPARE add_one(int) AS SELECT $1 + 1 AS answer;
EXECUTE add_one(41);
DEALLOCATE add_one;
\encoding LATIN1
SELECT 'h' || chr(233) || 'llo' AS latin1;
\encoding UTF8
SELECT repeat('abc', 20000) AS long_value \g /dev/null
SELECT length(repeat('abc', 20000)) AS long_length;
SELECT 1/0;
\errverbose
BEGIN;
SELECT 'in transaction';
SAVEPOINT s1;
SELECT 1/0;
ROLLBACK TO SAVEPOINT s1;
SELECT 'recovered';
COMMIT;
;
DROP TABLE items;
