"""pgqueuer side of bench/src/bin/compare.rs. Verbs:
  install                  create pgqueuer's tables
  enqueue COUNT            queue COUNT no-op jobs
  work CONCURRENCY [OUT]   run a worker taking up to CONCURRENCY jobs at once (batches
                           of CONCURRENCY/2, the largest its rule allows); with OUT,
                           each job appends its enqueue->start delay (ms)
  produce RATE SECONDS     queue RATE jobs per second carrying their enqueue time
The connection string is in DATABASE_URL."""

import asyncio
import os
import sys
import time
from datetime import timedelta

import asyncpg
from pgqueuer import AsyncpgDriver, Queries, QueueManager

DSN = os.environ["DATABASE_URL"]


async def main(verb, *args):
    conn = await asyncpg.connect(DSN)
    queries = Queries(AsyncpgDriver(conn))
    if verb == "install":
        await queries.install()
    elif verb == "enqueue":
        count = int(args[0])
        for done in range(0, count, 5000):
            n = min(5000, count - done)
            await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
    elif verb == "work":
        concurrency = int(args[0])
        out = open(args[1], "a", buffering=1) if len(args) > 1 else None
        manager = QueueManager(queries)

        @manager.entrypoint("noop")
        async def noop(job):
            if out is not None and job.payload:
                out.write(f"{(time.time() - float(job.payload)) * 1000}\n")

        await manager.run(
            batch_size=max(1, concurrency // 2),
            max_concurrent_tasks=max(2, concurrency),
            dequeue_timeout=timedelta(seconds=1),
        )
    elif verb == "produce":
        rate, seconds = int(args[0]), int(args[1])
        start = time.monotonic()
        for i in range(rate * seconds):
            wait = start + i / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await queries.enqueue("noop", str(time.time()).encode())
    else:
        raise SystemExit(f"unknown verb {verb}")
    await conn.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
