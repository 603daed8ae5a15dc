"""A ``LambdaContext`` for calling handlers directly (Powertools' testing pattern)."""

from __future__ import annotations

from dataclasses import dataclass, field

ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass
class LambdaContext:
    """What a handler and Powertools' ``inject_lambda_context`` read from the context."""

    function_name: str = "processor"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "req-1"
    remaining_ms: int = 60_000
    invoked_function_arn: str = field(default="")

    def __post_init__(self) -> None:
        if not self.invoked_function_arn:
            self.invoked_function_arn = \
                f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
