#!/usr/bin/env python3
"""Monthly cost estimate of each environment from public us-east-1 list prices.

    python scripts/cost.py [--env dev] [--ticks 10] [--write docs/COST.md]

Reads the environment's network/ and services/ tfvars (NAT mode, collector subnet tier and
public IP, interface endpoints, stream mode and shards, endpoint type, collector capacity
provider, processor memory, batch size), counts the alarms in services/observability.tf, and
prices the stack idle (nothing flowing; what an environment costs just by existing) and at
``--ticks`` bars per second (steady, around the clock). Free tiers are ignored (a shared
account uses them up elsewhere); taxes and data transfer to the internet are not included.

PRICES is a dated snapshot transcribed by hand from the AWS pricing pages named in SOURCES
(us-east-1, on-demand list prices). Re-check them before budgeting; change PRICES_AS_OF with them.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOURS = 730.0  # hours per month (AWS convention)
SECONDS = HOURS * 3600

PRICES_AS_OF = "2025-06 (transcribed from the pages below; us-east-1, on-demand, USD)"
SOURCES = {
    "NAT gateway, public IPv4": "https://aws.amazon.com/vpc/pricing/",
    "Interface endpoints": "https://aws.amazon.com/privatelink/pricing/",
    "Kinesis Data Streams": "https://aws.amazon.com/kinesis/data-streams/pricing/",
    "Lambda": "https://aws.amazon.com/lambda/pricing/",
    "DynamoDB on-demand": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "SageMaker": "https://aws.amazon.com/sagemaker/pricing/",
    "Fargate / Fargate Spot": "https://aws.amazon.com/fargate/pricing/",
    "CloudWatch": "https://aws.amazon.com/cloudwatch/pricing/",
    "KMS, Secrets Manager": "https://aws.amazon.com/kms/pricing/ , "
                            "https://aws.amazon.com/secrets-manager/pricing/",
    "S3, Firehose, SQS, ECR": "https://aws.amazon.com/s3/pricing/ , "
                              "https://aws.amazon.com/firehose/pricing/",
}
PRICES = {
    "nat_hour": 0.045, "nat_gb": 0.045, "ipv4_hour": 0.005,
    "endpoint_az_hour": 0.01, "endpoint_gb": 0.01,
    "kinesis_shard_hour": 0.015, "kinesis_put_unit_million": 0.014,
    "kinesis_od_stream_hour": 0.04, "kinesis_od_gb_in": 0.08, "kinesis_od_gb_out": 0.04,
    "lambda_gb_second": 0.0000166667, "lambda_request_million": 0.20,
    "ddb_wru_million": 0.625, "ddb_rru_million": 0.125, "ddb_gb_month": 0.25,
    "ddb_pitr_gb_month": 0.20,
    "sm_serverless_gb_second": 0.00002, "sm_serverless_gb_processed": 0.016,
    "sm_ml_m5_large_hour": 0.115, "sm_training_ml_m5_large_hour": 0.115,
    "fargate_vcpu_hour": 0.04048, "fargate_gb_hour": 0.004445,
    "fargate_spot_vcpu_hour": 0.012144, "fargate_spot_gb_hour": 0.0013335,
    "alarm_month": 0.10, "dashboard_month": 3.00, "logs_gb_ingested": 0.50,
    "logs_gb_month": 0.03, "kms_key_month": 1.00, "kms_request_10k": 0.03,
    "secret_month": 0.40, "s3_gb_month": 0.023, "s3_put_1000": 0.005,
    "firehose_gb": 0.029, "sqs_request_million": 0.40, "ecr_gb_month": 0.10,
}

# Workload assumptions (per bar / per batch), stated so they can be argued with.
BAR_BYTES = 220            # one JSON bar on the stream
RESULT_WRU = 1             # results item 0.4-0.6 KB (measured on the local stack: p50 395 B,
                           # max 568 B) -> 1 write unit
STATE_WRU = 2              # state item ~0.7 KB (format 2, docs/BENCHMARKS.md), written per
                           # symbol and batch in TransactWriteItems: 2 units per KB
STATE_RRU = 1              # BatchGetItem, strongly consistent, ~0.7 KB -> 1 x 4 KB unit
SYMBOLS = 6
LAMBDA_SECONDS_BASE = 0.25  # per invocation (BatchGetItem, InvokeEndpoint, writes)
LAMBDA_SECONDS_PER_SYMBOL = 0.0002  # O(1) kernel step, result item, state (bench_processor)
ENDPOINT_SECONDS = 0.08    # model time per InvokeEndpoint (logistic regression, small batch)
LOG_BYTES_PER_INVOCATION = 600
TRAININGS_PER_MONTH = 10   # rate(3 days)
TRAINING_HOURS = 0.2       # ml.m5.large, incl. start-up


def alarm_count(env_name: str, endpoint: bool = True, collector: bool = True) -> int:
    """CloudWatch alarms of services/observability.tf: one ``namespace =`` line per alarm in
    ``local.alarms``; the endpoint alarms only with the endpoint, the collector heartbeat only
    with a running collector service (never in local)."""
    text = (REPO / "services" / "observability.tf").read_text()
    block = text[text.index("  alarms = merge("):text.index('resource "aws_sns_topic" "ops"')]
    total = block.count("namespace   =")
    if not endpoint:
        total -= block[block.index("var.create_endpoint ?"):].count("namespace   =")
    if not collector or env_name == "local":
        total -= block[block.index("local.collector_runs ?"):block.index("var.create_endpoint ?")
                       ].count("namespace   =")
    return total


@dataclass
class Env:
    name: str
    nat_mode: str
    collector_public_ip: bool
    alarms: int
    endpoints: int
    azs: int
    stream_mode: str
    shards: int
    endpoint_instance: str | None
    serverless_mb: int
    spot: bool
    collector_vcpu: float
    collector_gb: float
    collector_tasks: int
    lambda_mb: int
    batch_size: int
    window_s: float


def load_env(name: str) -> Env:
    import hcl2

    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False,
                                        with_comments=False)

    def tfvars(root: str) -> dict:
        with (REPO / root / "envs" / f"{name}.tfvars").open() as handle:
            return hcl2.load(handle, serialization_options=options)

    net, svc = tfvars("network"), tfvars("services")
    strategy = svc.get("collector_capacity_provider_strategy") or [
        {"capacity_provider": "FARGATE"}]
    collector_tasks = int(svc.get("collector_desired_count", 1))
    return Env(
        name=name, nat_mode=net.get("nat_gateway_mode", "single"),
        collector_public_ip=net.get("collector_subnet_tier", "private") == "public",
        alarms=alarm_count(name, endpoint=svc.get("create_endpoint", True),
                           collector=collector_tasks > 0),
        endpoints=len(net.get("interface_endpoint_services", [])), azs=2,
        stream_mode=svc.get("stream_mode", "PROVISIONED"),
        shards=int(svc.get("stream_shard_count", 1)),
        endpoint_instance=svc.get("endpoint_instance_type"),
        serverless_mb=int(svc.get("endpoint_serverless_memory_mb", 2048)),
        spot=strategy[0]["capacity_provider"] == "FARGATE_SPOT",
        collector_vcpu=int(svc.get("collector_cpu", 256)) / 1024,
        collector_gb=int(svc.get("collector_memory", 512)) / 1024,
        collector_tasks=collector_tasks,
        lambda_mb=int(svc.get("processor_memory_mb", 1024)),
        batch_size=int(svc.get("esm_batch_size", 100)),
        window_s=float(svc.get("esm_maximum_batching_window_seconds", 1)),
    )


def estimate(env: Env, ticks: float) -> dict[str, float]:
    """Monthly USD per line item at ``ticks`` bars/second (0 = idle)."""
    p = PRICES
    items: dict[str, float] = {}
    bars = ticks * SECONDS
    gb = bars * BAR_BYTES / 1e9
    # network
    nats = {"none": 0, "single": 1, "per_az": env.azs}[env.nat_mode]
    items["NAT gateway(s) + public IPv4"] = nats * HOURS * (p["nat_hour"] + p["ipv4_hour"])
    # A collector in a public subnet (no NAT) holds one public IPv4 per task instead.
    items["Collector public IPv4"] = (env.collector_tasks * HOURS * p["ipv4_hour"]
                                      if env.collector_public_ip else 0.0)
    items["NAT data processed"] = nats and gb * 2 * p["nat_gb"]  # market data in + API calls
    items["Interface endpoints"] = env.endpoints * env.azs * HOURS * p["endpoint_az_hour"]
    # stream
    if env.stream_mode == "ON_DEMAND":
        items["Kinesis"] = (HOURS * p["kinesis_od_stream_hour"] + gb * p["kinesis_od_gb_in"]
                            + gb * p["kinesis_od_gb_out"])
    else:
        items["Kinesis"] = (env.shards * HOURS * p["kinesis_shard_hour"]
                            + bars / 1e6 * p["kinesis_put_unit_million"])
    # processor: a batch closes when full or when the window ends
    window = max(env.window_s, 1.0)
    if ticks == 0:
        rate = 0.0
    elif ticks / env.batch_size >= 1 / window:
        rate = ticks / env.batch_size          # full batches
    else:
        rate = min(ticks, 1 / window)          # one batch per window (or per bar when sparser)
    invocations = rate * SECONDS
    symbols = SYMBOLS if ticks else 0
    duration = LAMBDA_SECONDS_BASE + LAMBDA_SECONDS_PER_SYMBOL * SYMBOLS
    items["Lambda processor"] = (invocations * duration * env.lambda_mb / 1024
                                 * p["lambda_gb_second"]
                                 + invocations / 1e6 * p["lambda_request_million"])
    # tables
    state_writes = invocations * symbols
    items["DynamoDB"] = ((bars * RESULT_WRU + state_writes * STATE_WRU) / 1e6 * p["ddb_wru_million"]
                         + state_writes * STATE_RRU / 1e6 * p["ddb_rru_million"]
                         + bars * 0.6e-6 * (p["ddb_gb_month"]
                                                           + p["ddb_pitr_gb_month"]))
    # endpoint
    if env.endpoint_instance:
        items["SageMaker endpoint"] = HOURS * p["sm_ml_m5_large_hour"]
    else:
        items["SageMaker endpoint"] = (invocations * ENDPOINT_SECONDS * env.serverless_mb / 1024
                                       * p["sm_serverless_gb_second"]
                                       + gb * 0.3 * p["sm_serverless_gb_processed"])
    items["SageMaker training (every 3 days)"] = (TRAININGS_PER_MONTH * TRAINING_HOURS
                                                  * p["sm_training_ml_m5_large_hour"])
    # collector
    vcpu, gbh = (("fargate_spot_vcpu_hour", "fargate_spot_gb_hour") if env.spot
                 else ("fargate_vcpu_hour", "fargate_gb_hour"))
    items["Fargate collector" + (" (Spot)" if env.spot else "")] = env.collector_tasks * HOURS * (
        env.collector_vcpu * p[vcpu] + env.collector_gb * p[gbh])
    # history and the rest
    items["Firehose + S3 history"] = gb * p["firehose_gb"] + gb * 0.3 * 6 * p["s3_gb_month"]
    log_gb = invocations * LOG_BYTES_PER_INVOCATION / 1e9
    items[f"CloudWatch ({env.alarms} alarms, dashboard, logs)"] = (env.alarms * p["alarm_month"]
                                                     + p["dashboard_month"]
                                                     + log_gb * (p["logs_gb_ingested"]
                                                                 + p["logs_gb_month"]))
    items["KMS (2 keys), Secrets Manager, ECR, SQS"] = (2 * p["kms_key_month"]
                                                       + p["secret_month"]
                                                       + 0.1 * p["ecr_gb_month"]
                                                       + invocations * 3 / 1e4
                                                       * p["kms_request_10k"])
    return {k: round(float(v), 2) for k, v in items.items()}


TRADE_OFFS = """## dev without a NAT gateway: the trade-off

An idle dev stack used to cost ~$56/month, $36.50 of it one NAT gateway whose only user is the
collector's outbound HTTPS (Kinesis, ECR, CloudWatch Logs, Secrets Manager, the market-data
API). dev now sets `collector_subnet_tier = "public"` and `nat_gateway_mode = "none"` in
`network/envs/dev.tfvars`: the collector task runs in a public subnet with a public IPv4
($0.005/hour, $3.65/month) and the egress-only security group (TCP 443 out, no ingress rule at
all), so nothing on the internet can open a connection to it. What dev gives up:

- **Network isolation of the task.** A public IP is reachable in principle; only the security
  group (no ingress) stands between it and the internet. prod keeps private subnets, per-AZ NAT
  and interface endpoints (`collector_subnet_tier = "private"`; the network root refuses a private
  collector without NAT).
- **A fixed egress IP.** Each task start gets a new public IP; a market-data provider that
  allow-lists IPs needs the NAT's Elastic IP (prod).

Alternatives considered: IPv6 egress through an egress-only internet gateway avoids the IPv4
charge too, but only works if every endpoint the task uses (ECR image pulls, Kinesis,
CloudWatch Logs, Secrets Manager, the market-data API) answers over IPv6 and Fargate runs the
task IPv6-only; that could not be verified here (no AWS access), so it is not the default.
Interface endpoints (5 x 2 AZ x $7.30 = $73/month) cost more than the NAT.
`collector_desired_count = 0` idles dev lower still (no Fargate, no public IP) when nobody streams.

Alarms are priced per alarm from `services/observability.tf` (the collector heartbeat only exists
with a running collector service, the endpoint alarms only with the endpoint).

## DynamoDB under load

At 100 bars/s DynamoDB was $544/month with the 600-bar window state (12 write + 3 read units
per symbol and batch, results assumed at 2 units) and is $246 now: the format-2 state item is
~0.7 KB (2 units in a transaction, 1 read unit), the results item measures 0.4-0.6 KB (1 unit).
What remains is inherent to the product: one results item per bar (263 M writes a month at
100 bars/s, ~$164) and their point-in-time-recovery storage. A results table without PITR or
with a short `result_ttl_days` lowers the storage share; provisioned capacity with auto scaling
lowers the write price for a steady feed.
"""


def render(envs: list[str], ticks: list[float]) -> str:
    lines = ["# Monthly cost estimate", "",
             "Generated by `scripts/cost.py` (`make cost ENV=dev TICKS=10`). "
             f"Prices: {PRICES_AS_OF}.",
             ("Assumptions: 6 symbols, ~220-byte bars, steady load around the clock (market hours "
              "are ~20% of a month: divide the traffic-driven lines accordingly), no free tier, "
              "no tax, no internet egress; see the constants at the top of the script."), ""]
    for name in envs:
        env = load_env(name)
        columns = [estimate(env, t) for t in ticks]
        placement = ("a public subnet with a public IPv4" if env.collector_public_ip
                     else "private subnets")
        lines += [f"## {name}", "",
                  f"NAT `{env.nat_mode}`, collector in {placement}, "
                  f"{env.endpoints} interface endpoints x {env.azs} AZ, "
                  f"Kinesis {env.stream_mode}"
                  + (f" ({env.shards} shards)" if env.stream_mode == "PROVISIONED" else "")
                  + f", endpoint {env.endpoint_instance or f'serverless {env.serverless_mb} MB'}, "
                  f"collector {'Fargate Spot' if env.spot else 'Fargate'}.", "",
                  "| item | " + " | ".join("idle" if t == 0 else f"{t:g} bars/s" for t in ticks)
                  + " |", "|---|" + "---:|" * len(ticks)]
        for item in columns[0]:
            lines.append(f"| {item} | " + " | ".join(f"${c[item]:,.2f}" for c in columns) + " |")
        lines.append("| **total** | " + " | ".join(f"**${sum(c.values()):,.2f}**"
                                                    for c in columns) + " |")
        lines.append("")
    lines += [TRADE_OFFS]
    lines += ["## Price sources", ""] + [f"- {k}: {v}" for k, v in SOURCES.items()] + [""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None, help="local|dev|prod (default: dev and prod)")
    parser.add_argument("--ticks", type=float, default=10.0, help="bars per second")
    parser.add_argument("--write", type=Path, default=REPO / "docs" / "COST.md",
                        help="markdown report of every environment (dev, prod)")
    args = parser.parse_args(argv)
    ticks = sorted({0.0, 1.0, args.ticks, 100.0})
    args.write.write_text(render(["dev", "prod"], ticks))
    envs = [args.env] if args.env else ["dev", "prod"]
    print(render(envs, ticks))
    shown = args.write.relative_to(REPO) if args.write.is_relative_to(REPO) else args.write
    print(f"(written: {shown})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
