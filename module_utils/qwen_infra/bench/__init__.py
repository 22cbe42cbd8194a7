"""`qwen-infra bench`: a load generator for any OpenAI-compatible endpoint (the front door or one host).

    workload.py   what is sent and when: prompts and output lengths (options or a dataset file), arrivals
                  at a fixed concurrency or a request rate, until a duration or a request count
    client.py     one streamed request through httpx, timed: time to first token, the gaps between
                  tokens, end-to-end latency, tokens and the HTTP status
    stats.py      percentiles and the run's summary (pure)
    report.py     the summary as a table, JSON and a PNG plot over time; the sizing engine's prediction
    runner.py     runs the workload with a progress line

Needs the `bench` extra (httpx, matplotlib); the rest of qwen_infra stays stdlib-only.
"""
