-- QuickSight data set "latest" (the freshness KPI and table): per symbol, the newest bar time
-- (UTC), the number of bars held, the last close and the last prediction (the newest bar that
-- has one). The same numbers as the local index page (stocksage.dashboard.summarize).
SELECT
  "symbol",
  count(*) AS "bars",
  max(CAST(from_iso8601_timestamp("bar_time") AS timestamp)) AS "last_bar_ts",
  max_by("close", "bar_time") AS "last_close",
  max_by("prob_up", "bar_time") FILTER (WHERE "prob_up" IS NOT NULL) AS "last_prob_up",
  max_by("model_version", "bar_time") FILTER (WHERE "prob_up" IS NOT NULL) AS "model_version"
FROM "${results_catalog}"."${results_database}"."results"
GROUP BY "symbol"
