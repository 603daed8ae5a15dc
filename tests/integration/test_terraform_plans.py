"""Plans of services/ against the session's emulator: what the provider checks only at plan
time, and what a change would replace.

* The QuickSight layer planned with enable_quicksight = true: the provider validates it.
  ``terraform validate`` sees variables as unknown, and the AWS provider skips the checks of a
  dashboard ``definition`` that holds any unknown value; ``terraform plan`` has every value
  (the data set ARNs are built from ids for that reason), so the provider checks the whole
  definition - enums, ARNs, required blocks, limits - and the dashboard's column precondition
  runs (nothing is applied: moto has no QuickSight, Athena connector or Serverless
  Application Repository to apply it to).
* A changed bootstrap endpoint setting replaces nothing that may serve.

Plans run with no refresh and no lock.
"""

from __future__ import annotations

import re

import pytest

from stocksage.config import STACK
from stocksage.local.stack import terraform

pytestmark = pytest.mark.integration

PRINCIPAL = "arn:aws:quicksight:us-east-1:123456789012:group/default/analysts"


def test_plan_with_quicksight_validates_the_dashboard_definition(stack):
    text = terraform("plan", "-refresh=false", "-lock=false", "-no-color",
                     "-var", "enable_quicksight=true",
                     "-var", f"quicksight_principal_arn={PRINCIPAL}",
                     endpoints=stack.endpoints, capture=True)
    assert "aws_quicksight_dashboard.analytics[0] will be created" in text
    for data_set in ("results", "latest", "alerts", "history_monthly"):
        assert f'aws_quicksight_data_set.query["{data_set}"] will be created' in text
    assert "aws_sns_topic_subscription.alerts_archive[0] will be created" in text
    project, env = STACK.project, stack.outputs["environment"]
    assert re.search(r'quicksight_dashboard_url\s+= "https://us-east-1\.quicksight\.aws\.amazon\.com/'
                     rf'sn/dashboards/{project}_{env}_dashboard"', text)
    # the sheets and visuals the analysts get
    for sheet in ("Symbol", "Freshness"):
        assert re.search(rf'\bname\s+= "{sheet}"', text), sheet
    for visual in ("freshness", "price", "rsi", "macd", "prediction", "range", "alerts", "latest",
                   "history"):
        assert re.search(rf'visual_id\s+= "{visual}"', text), visual
    drawn = set(re.findall(r'column_name\s+= "([a-z0-9_]+)"', text))
    indicators = {"sma_20", "ema_12", "ema_26", "bb_high", "bb_mavg", "bb_low", "rsi_14", "macd",
                  "macd_signal", "macd_diff"}
    assert indicators <= set(STACK.indicator_columns)  # the names the dashboard expects exist
    assert indicators | {"close", "prob_up", "bar_ts", "symbol", "last_bar_ts"} <= drawn
    assert {"range_low", "range_high"} <= drawn  # the range forecast band (two-output model)


def test_a_changed_bootstrap_endpoint_setting_destroys_nothing_that_may_serve(stack):
    """Terraform creates the bootstrap model and endpoint configuration; afterwards the model
    lifecycle owns what serves (promotion copies the serving configuration's variants and the
    serving model's container). A changed serving setting must not replace or delete them:
    the endpoint may still serve them, and the next promotion reads them."""
    text = terraform("plan", "-refresh=false", "-lock=false", "-no-color",
                     "-var", "endpoint_serverless_memory_mb=4096",
                     "-var", "endpoint_serverless_max_concurrency=7",
                     endpoints=stack.endpoints, capture=True)
    touched = re.findall(r"# (module\.endpoint\[0\]\.\S+) (?:must be replaced|will be destroyed|"
                         r"will be updated in-place)", text)
    assert touched == [], touched
