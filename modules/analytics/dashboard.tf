################################################################################
# QuickSight dashboard (create): what analysts open. Moved from services/analytics_dashboard.tf
# (the sheets and visuals are described there).
#
# Sheet "Symbol" (a Symbol drop-down filters every visual of the sheet, across data sets): KPI
# of the newest bar; price with SMA / EMA / Bollinger; RSI; MACD combo; the model's probability
# up; the forecast range band; the most recent alerts. Sheet "Freshness": newest bar per symbol
# and the bar history coverage per symbol and month.
#
# Column names follow var.indicators (sma_20, ema_12, ...); a precondition stops the plan if one
# of them is not a column of the results data set (var.query_columns.results).
################################################################################

locals {
  rsi_col = "rsi_${var.indicators.rsi_window}"

  # Line-chart panels of the Symbol sheet: results columns drawn, horizontal reference lines.
  dashboard_lines = {
    price = {
      title   = "Price, SMA ${var.indicators.sma_window}, EMA ${var.indicators.ema_fast}/${var.indicators.ema_slow}, Bollinger (${var.indicators.bb_window}, ${var.indicators.bb_dev})"
      columns = ["close", "sma_${var.indicators.sma_window}", "ema_${var.indicators.ema_fast}", "ema_${var.indicators.ema_slow}", "bb_high", "bb_mavg", "bb_low"]
      levels  = []
      row     = 4
      height  = 12
    }
    rsi = {
      title   = "RSI ${var.indicators.rsi_window} (30 / 70)"
      columns = [local.rsi_col]
      levels  = [30, 70]
      row     = 16
      height  = 6
    }
    prediction = {
      title   = "Model: probability the next bar closes higher"
      columns = ["prob_up"]
      levels  = [0.5]
      row     = 30
      height  = 6
    }
    # range_low/high at bar t: the band of the range forecast for bar t+1 around close[t]
    # (close * exp(-+range_forecast / 2)); empty while no range model serves.
    range = {
      title   = "Model: next bar's forecast range as a band around the close (drawn at the bar it was forecast from)"
      columns = ["close", "range_low", "range_high"]
      levels  = []
      row     = 36
      height  = 8
    }
  }
  dashboard_macd = {
    title   = "MACD (${var.indicators.ema_fast}, ${var.indicators.ema_slow}, ${var.indicators.macd_signal}): histogram, MACD, signal"
    bars    = ["macd_diff"]
    lines   = ["macd", "macd_signal"]
    row     = 22
    height  = 8
    visual  = "macd"
    dataset = "results"
  }
  dashboard_alert_columns   = ["bar_ts", "symbol", "severity", "rule_type", "subject", "close"]
  dashboard_latest_columns  = ["symbol", "last_bar_ts", "bars", "last_close", "last_prob_up", "model_version"]
  dashboard_history_columns = ["symbol", "year", "month", "bars", "bars_stored", "first_bar_ts", "last_bar_ts", "last_close"]

  # Every results column a visual reads (checked against the data set by a precondition).
  dashboard_result_columns = distinct(concat(
    flatten([for panel in local.dashboard_lines : panel.columns]),
    local.dashboard_macd.bars, local.dashboard_macd.lines, ["symbol", "bar_ts"],
  ))

  quicksight_dashboard_actions = [
    "quicksight:DescribeDashboard", "quicksight:ListDashboardVersions", "quicksight:QueryDashboard",
    "quicksight:UpdateDashboard", "quicksight:DeleteDashboard", "quicksight:UpdateDashboardPermissions",
    "quicksight:DescribeDashboardPermissions", "quicksight:UpdateDashboardPublishedVersion",
  ]
  dashboard_id = "${var.name}_dashboard"
}

resource "aws_quicksight_dashboard" "analytics" {
  count = var.create ? 1 : 0

  dashboard_id = local.dashboard_id
  name         = var.display_name
  # Kept as it was before the move into this module (a new text would publish a new version).
  version_description = "Managed by Terraform (services/analytics_dashboard.tf)."

  definition {
    dynamic "data_set_identifiers_declarations" {
      # ARNs built from the data set ids (not read from the resources): with every value of the
      # definition known at plan time the provider validates the whole definition (enums,
      # ARNs, limits) in terraform plan; one computed value inside would skip that check.
      for_each = var.data_sets

      content {
        identifier   = data_set_identifiers_declarations.value
        data_set_arn = "arn:${local.partition}:quicksight:${local.region}:${local.account_id}:dataset/${var.name}_${data_set_identifiers_declarations.value}"
      }
    }

    # One symbol at a time; the filter follows the "symbol" column into every data set.
    filter_groups {
      filter_group_id = "symbol"
      cross_dataset   = "ALL_DATASETS"
      status          = "ENABLED"

      filters {
        category_filter {
          filter_id = "symbol"

          column {
            data_set_identifier = "results"
            column_name         = var.results_partition_key
          }

          configuration {
            filter_list_configuration {
              match_operator     = "CONTAINS"
              select_all_options = "FILTER_ALL_VALUES"
            }
          }
        }
      }

      scope_configuration {
        selected_sheets {
          sheet_visual_scoping_configurations {
            sheet_id = "symbol"
            scope    = "ALL_VISUALS"
          }
        }
      }
    }

    sheets {
      sheet_id = "symbol"
      name     = "Symbol"
      title    = "One symbol: price, indicators, prediction, alerts"

      filter_controls {
        dropdown {
          filter_control_id = "symbol-control"
          source_filter_id  = "symbol"
          title             = "Symbol"
          type              = "SINGLE_SELECT"
        }
      }

      # Freshness KPI: newest bar of the selected symbol.
      visuals {
        kpi_visual {
          visual_id = "freshness"

          title {
            format_text {
              plain_text = "Newest bar (UTC)"
            }
          }

          chart_configuration {
            field_wells {
              values {
                date_measure_field {
                  field_id             = "freshness-last_bar_ts"
                  aggregation_function = "MAX"

                  column {
                    data_set_identifier = "latest"
                    column_name         = "last_bar_ts"
                  }
                }
              }
            }
          }
        }
      }

      dynamic "visuals" {
        for_each = local.dashboard_lines

        content {
          line_chart_visual {
            visual_id = visuals.key

            title {
              format_text {
                plain_text = visuals.value.title
              }
            }

            chart_configuration {
              field_wells {
                line_chart_aggregated_field_wells {
                  category {
                    date_dimension_field {
                      field_id         = "${visuals.key}-bar_ts"
                      date_granularity = var.dashboard_time_granularity

                      column {
                        data_set_identifier = "results"
                        column_name         = "bar_ts"
                      }
                    }
                  }

                  dynamic "values" {
                    for_each = visuals.value.columns

                    content {
                      numerical_measure_field {
                        field_id = "${visuals.key}-${values.value}"

                        aggregation_function {
                          simple_numerical_aggregation = "AVERAGE"
                        }

                        column {
                          data_set_identifier = "results"
                          column_name         = values.value
                        }
                      }
                    }
                  }
                }
              }

              dynamic "reference_lines" {
                for_each = visuals.value.levels

                content {
                  status = "ENABLED"

                  data_configuration {
                    static_configuration {
                      value = reference_lines.value
                    }
                  }

                  label_configuration {
                    custom_label_configuration {
                      custom_label = tostring(reference_lines.value)
                    }
                  }
                }
              }
            }
          }
        }
      }

      visuals {
        combo_chart_visual {
          visual_id = local.dashboard_macd.visual

          title {
            format_text {
              plain_text = local.dashboard_macd.title
            }
          }

          chart_configuration {
            field_wells {
              combo_chart_aggregated_field_wells {
                category {
                  date_dimension_field {
                    field_id         = "macd-bar_ts"
                    date_granularity = var.dashboard_time_granularity

                    column {
                      data_set_identifier = "results"
                      column_name         = "bar_ts"
                    }
                  }
                }

                dynamic "bar_values" {
                  for_each = local.dashboard_macd.bars

                  content {
                    numerical_measure_field {
                      field_id = "macd-${bar_values.value}"

                      aggregation_function {
                        simple_numerical_aggregation = "AVERAGE"
                      }

                      column {
                        data_set_identifier = "results"
                        column_name         = bar_values.value
                      }
                    }
                  }
                }

                dynamic "line_values" {
                  for_each = local.dashboard_macd.lines

                  content {
                    numerical_measure_field {
                      field_id = "macd-${line_values.value}"

                      aggregation_function {
                        simple_numerical_aggregation = "AVERAGE"
                      }

                      column {
                        data_set_identifier = "results"
                        column_name         = line_values.value
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }

      # Recent alerts of the selected symbol, newest bar first.
      visuals {
        table_visual {
          visual_id = "alerts"

          title {
            format_text {
              plain_text = "Recent alerts"
            }
          }

          chart_configuration {
            field_wells {
              table_unaggregated_field_wells {
                dynamic "values" {
                  for_each = local.dashboard_alert_columns

                  content {
                    field_id = "alerts-${values.value}"

                    column {
                      data_set_identifier = "alerts"
                      column_name         = values.value
                    }
                  }
                }
              }
            }

            sort_configuration {
              row_sort {
                field_sort {
                  field_id  = "alerts-bar_ts"
                  direction = "DESC"
                }
              }

              pagination_configuration {
                page_number = 1
                page_size   = var.dashboard_alerts_rows
              }
            }
          }
        }
      }

      layouts {
        configuration {
          grid_layout {
            elements {
              element_id   = "freshness"
              element_type = "VISUAL"
              column_index = "0"
              column_span  = 12
              row_index    = "0"
              row_span     = 4
            }

            dynamic "elements" {
              for_each = local.dashboard_lines

              content {
                element_id   = elements.key
                element_type = "VISUAL"
                column_index = "0"
                column_span  = 36
                row_index    = tostring(elements.value.row)
                row_span     = elements.value.height
              }
            }

            elements {
              element_id   = local.dashboard_macd.visual
              element_type = "VISUAL"
              column_index = "0"
              column_span  = 36
              row_index    = tostring(local.dashboard_macd.row)
              row_span     = local.dashboard_macd.height
            }

            elements {
              element_id   = "alerts"
              element_type = "VISUAL"
              column_index = "0"
              column_span  = 36
              row_index    = "44"
              row_span     = 10
            }
          }
        }
      }
    }

    sheets {
      sheet_id = "freshness"
      name     = "Freshness"
      title    = "Every symbol: newest bar, predictions, history coverage"

      dynamic "visuals" {
        for_each = {
          latest  = { title = "Newest bar per symbol (results in DynamoDB)", columns = local.dashboard_latest_columns, sort = "last_bar_ts" }
          history = { title = "Bar history per symbol and month (S3)", columns = local.dashboard_history_columns, sort = "last_bar_ts" }
        }

        content {
          table_visual {
            visual_id = visuals.key

            title {
              format_text {
                plain_text = visuals.value.title
              }
            }

            chart_configuration {
              field_wells {
                table_unaggregated_field_wells {
                  dynamic "values" {
                    for_each = visuals.value.columns

                    content {
                      field_id = "${visuals.key}-${values.value}"

                      column {
                        data_set_identifier = visuals.key == "latest" ? "latest" : "history_monthly"
                        column_name         = values.value
                      }
                    }
                  }
                }
              }

              sort_configuration {
                row_sort {
                  field_sort {
                    field_id  = "${visuals.key}-${visuals.value.sort}"
                    direction = "DESC"
                  }
                }
              }
            }
          }
        }
      }
    }
  }

  dashboard_publish_options {
    ad_hoc_filtering_option {
      availability_status = "ENABLED"
    }

    export_to_csv_option {
      availability_status = "ENABLED"
    }

    sheet_controls_option {
      visibility_state = "EXPANDED"
    }
  }

  permissions {
    principal = var.quicksight_principal_arn
    actions   = local.quicksight_dashboard_actions
  }

  depends_on = [aws_quicksight_data_set.query]

  lifecycle {
    precondition {
      condition     = length(setsubtract(local.dashboard_result_columns, [for c in var.query_columns.results : c.name])) == 0
      error_message = "The dashboard reads results columns that the results data set lacks: check stack.json (indicator_columns, indicators) against var.result_columns."
    }
  }
}

