"""The collector's Kinesis sink: buffered PutRecords with bounded retries and a spill file.

- ``kinesis_sink``: ``KinesisSink`` (buffer, flush, retries of failed records, per-key order).
- ``put_requests``: Kinesis' limits and the choice of a request's records from the buffer.
- ``put_errors``: why records could not be written (``KinesisPutError``, ``FlushDeadlineError``).
- ``spill``: the file that keeps unsent records across a restart.
- ``stats``: counters of what was sent, retried and given up.
"""
