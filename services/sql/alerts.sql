-- QuickSight data set "alerts": the alerts archive (SNS -> Firehose -> s3://<history>/alerts/,
-- raw message = stocksage.alerts.Alert.payload()), one row per alert id. SNS and Firehose
-- deliver at least once, so a redelivered alert may be stored twice: DISTINCT folds the copies
-- (every selected field is a function of the alert id). The table's partition projection keeps
-- the last analytics_alerts_days days.
SELECT DISTINCT
  "alert_id",
  "symbol",
  "rule_id",
  "rule_type",
  "severity",
  "subject",
  CAST(from_iso8601_timestamp("bar"."bar_time") AS timestamp) AS "bar_ts",
  "bar"."close" AS "close"
FROM "AwsDataCatalog"."${history_database}"."alerts"
