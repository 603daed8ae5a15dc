-- Bar history coverage per symbol and month (docs/ANALYTICS.md): raw bars stored, distinct bar
-- times (the history is raw: redelivered bars are stored again), range and last close.
-- year and month are projected partitions: a WHERE on them reads only those folders.
SELECT
  "symbol",
  "year",
  "month",
  count(*) AS "bars_stored",
  count(DISTINCT "bar_time") AS "bars",
  min(CAST(from_iso8601_timestamp("bar_time") AS timestamp)) AS "first_bar_ts",
  max(CAST(from_iso8601_timestamp("bar_time") AS timestamp)) AS "last_bar_ts",
  min("low") AS "low",
  max("high") AS "high",
  max_by("close", "bar_time") AS "last_close"
FROM "AwsDataCatalog"."${history_database}"."bars"
GROUP BY "symbol", "year", "month"
