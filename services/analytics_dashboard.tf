################################################################################
# QuickSight dashboard (enable_quicksight): what analysts open.
#
# Sheet "Symbol" (a Symbol drop-down filters every visual of the sheet, across data sets):
#   - KPI: newest bar time of the symbol (freshness, data set "latest");
#   - price with SMA / EMA fast and slow / Bollinger bands;
#   - RSI with the 30 and 70 lines;
#   - MACD and its signal as lines over the MACD histogram (combo chart);
#   - the model's probability that the next bar closes higher, with the 0.5 line;
#   - the forecast range of the next bar as a price band around the close (range model);
#   - the most recent alerts (data set "alerts", newest first).
# Sheet "Freshness": newest bar, bars held, last close and prediction per symbol; bar history
# coverage per symbol and month (S3, data set "history_monthly").
#
# The dashboard itself is modules/analytics/dashboard.tf (module.analytics in analytics.tf);
# this file keeps its variables and the URL output of the root. Column names come from
# stocksage/stack.json (indicator windows -> sma_20, ema_12, ...); a precondition in the module
# stops the plan if one of them is not a column of the results data set.
# The local pages (stocksage.dashboard, make demo) draw the same panels from the same columns.
################################################################################

variable "dashboard_time_granularity" {
  description = "Time axis granularity of the dashboard's charts (the bar interval: DAY for daily bars, MINUTE for minute bars)."
  type        = string
  default     = "DAY"

  validation {
    condition     = contains(["SECOND", "MINUTE", "HOUR", "DAY", "WEEK", "MONTH"], var.dashboard_time_granularity)
    error_message = "dashboard_time_granularity must be one of SECOND, MINUTE, HOUR, DAY, WEEK, MONTH."
  }
}

variable "dashboard_alerts_rows" {
  description = "Rows per page of the recent alerts table."
  type        = number
  default     = 20

  validation {
    condition     = var.dashboard_alerts_rows >= 5 && var.dashboard_alerts_rows <= 500 && floor(var.dashboard_alerts_rows) == var.dashboard_alerts_rows
    error_message = "dashboard_alerts_rows must be a whole number between 5 and 500."
  }
}

output "quicksight_dashboard_url" {
  description = "URL of the QuickSight dashboard (null unless enable_quicksight)."
  value       = module.analytics.dashboard_url
}
