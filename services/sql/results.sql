-- QuickSight data set "results": one row per (symbol, bar) as the processor wrote it to
-- DynamoDB, read live through the Athena DynamoDB connector, plus bar_ts (a timestamp, UTC) for
-- time axes. The column list is rendered from services/analytics.tf (local.result_columns,
-- built from stocksage/stack.json); attributes an item lacks (indicator warm-up, no prediction)
-- are NULL.
SELECT
  ${result_columns},
  CAST(from_iso8601_timestamp("bar_time") AS timestamp) AS "bar_ts"
FROM "${results_catalog}"."${results_database}"."results"
