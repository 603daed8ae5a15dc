################################################################################
# Alerts feature: people subscribed to the alerts topic (e-mail, SMS)
#
# The variables below belong to the alerts feature (docs/ALERTS.md) and are declared here,
# next to the resources that use them, rather than in variables.tf.
#
# Every alert is published with the String message attributes `symbol`, `rule_type` and
# `severity`; a subscription's optional filter policy matches on them
# (filter_policy_scope = "MessageAttributes"). Without a filter policy the subscriber gets
# every alert. E-mail subscribers receive the readable text, SMS subscribers one short line
# (the publisher uses MessageStructure = "json"). E-mail subscriptions stay "pending
# confirmation" until the recipient clicks the link AWS sends.
################################################################################

locals {
  alert_filter_attributes = ["symbol", "rule_type", "severity"]
  alert_severities        = ["info", "warning", "critical"]
}

variable "alert_email_subscriptions" {
  description = <<-EOT
    Alerts feature. E-mail addresses subscribed to the alerts topic, each with an optional
    filter policy on the message attributes symbol, rule_type and severity, e.g.
    [{ endpoint = "ops@example.com", filter_policy = { severity = ["critical"] } }].
  EOT
  type = list(object({
    endpoint      = string
    filter_policy = optional(map(list(string)))
  }))
  default  = []
  nullable = false

  validation {
    condition = alltrue([
      for s in var.alert_email_subscriptions :
      can(regex("^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$", s.endpoint))
    ])
    error_message = "Each alert_email_subscriptions endpoint must be an e-mail address (local@domain.tld)."
  }

  validation {
    condition     = length(distinct([for s in var.alert_email_subscriptions : lower(s.endpoint)])) == length(var.alert_email_subscriptions)
    error_message = "alert_email_subscriptions endpoints must be unique."
  }

  validation {
    condition = alltrue([
      for s in var.alert_email_subscriptions : s.filter_policy == null ? true : alltrue([
        for name, values in s.filter_policy :
        contains(local.alert_filter_attributes, name) && length(values) > 0
      ])
    ])
    error_message = "A filter_policy may only use the attributes symbol, rule_type and severity, each with a non-empty list of values."
  }

  validation {
    condition = alltrue([
      for s in var.alert_email_subscriptions : alltrue([
        for value in try(s.filter_policy["severity"], []) : contains(local.alert_severities, value)
      ])
    ])
    error_message = "filter_policy severity values must be info, warning or critical."
  }
}

variable "alert_sms_subscriptions" {
  description = <<-EOT
    Alerts feature. Phone numbers (E.164, e.g. "+14155550100") subscribed to the alerts topic
    by SMS, each with an optional filter policy on symbol, rule_type and severity, e.g.
    [{ endpoint = "+14155550100", filter_policy = { severity = ["critical"], symbol = ["TSLA"] } }].
  EOT
  type = list(object({
    endpoint      = string
    filter_policy = optional(map(list(string)))
  }))
  default  = []
  nullable = false

  validation {
    condition = alltrue([
      for s in var.alert_sms_subscriptions : can(regex("^\\+[1-9][0-9]{1,14}$", s.endpoint))
    ])
    error_message = "Each alert_sms_subscriptions endpoint must be an E.164 phone number: + then 2 to 15 digits, no leading 0 (e.g. +14155550100)."
  }

  validation {
    condition     = length(distinct([for s in var.alert_sms_subscriptions : s.endpoint])) == length(var.alert_sms_subscriptions)
    error_message = "alert_sms_subscriptions endpoints must be unique."
  }

  validation {
    condition = alltrue([
      for s in var.alert_sms_subscriptions : s.filter_policy == null ? true : alltrue([
        for name, values in s.filter_policy :
        contains(local.alert_filter_attributes, name) && length(values) > 0
      ])
    ])
    error_message = "A filter_policy may only use the attributes symbol, rule_type and severity, each with a non-empty list of values."
  }

  validation {
    condition = alltrue([
      for s in var.alert_sms_subscriptions : alltrue([
        for value in try(s.filter_policy["severity"], []) : contains(local.alert_severities, value)
      ])
    ])
    error_message = "filter_policy severity values must be info, warning or critical."
  }
}

resource "aws_sns_topic_subscription" "alert_email" {
  for_each = { for s in var.alert_email_subscriptions : lower(s.endpoint) => s }

  topic_arn           = aws_sns_topic.alerts.arn
  protocol            = "email"
  endpoint            = each.value.endpoint
  filter_policy       = each.value.filter_policy == null ? null : jsonencode(each.value.filter_policy)
  filter_policy_scope = each.value.filter_policy == null ? null : "MessageAttributes"
}

resource "aws_sns_topic_subscription" "alert_sms" {
  for_each = { for s in var.alert_sms_subscriptions : s.endpoint => s }

  topic_arn           = aws_sns_topic.alerts.arn
  protocol            = "sms"
  endpoint            = each.value.endpoint
  filter_policy       = each.value.filter_policy == null ? null : jsonencode(each.value.filter_policy)
  filter_policy_scope = each.value.filter_policy == null ? null : "MessageAttributes"
}
