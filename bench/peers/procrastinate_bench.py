"""procrastinate side of bench/src/bin/compare.rs. Verbs:
  install                  create procrastinate's schema
  enqueue COUNT            queue COUNT no-op jobs
  work CONCURRENCY [OUT]   run a worker with CONCURRENCY concurrent jobs, woken by
                           LISTEN/NOTIFY; with OUT, each job appends its
                           enqueue->start delay (ms)
  produce RATE SECONDS     queue RATE jobs per second carrying their enqueue time
The connection string is in DATABASE_URL."""

import asyncio
import os
import sys
import time

import procrastinate

DSN = os.environ["DATABASE_URL"]
OUT = None


def make_app(max_size):
    return procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=DSN, min_size=1, max_size=max_size)
    )


async def main(verb, *args):
    global OUT
    concurrency = int(args[0]) if verb == "work" else 1
    app = make_app(max(4, concurrency + 2))

    @app.task(name="noop")
    async def noop(at=None):
        if OUT is not None and at is not None:
            OUT.write(f"{(time.time() - at) * 1000}\n")

    async with app.open_async():
        if verb == "install":
            await app.schema_manager.apply_schema_async()
        elif verb == "enqueue":
            count = int(args[0])
            for done in range(0, count, 2000):
                await noop.batch_defer_async(*([{}] * min(2000, count - done)))
        elif verb == "work":
            if len(args) > 1:
                OUT = open(args[1], "a", buffering=1)
            await app.run_worker_async(
                concurrency=concurrency,
                wait=True,
                listen_notify=True,
                fetch_job_polling_interval=1.0,
            )
        elif verb == "produce":
            rate, seconds = int(args[0]), int(args[1])
            start = time.monotonic()
            for i in range(rate * seconds):
                wait = start + i / rate - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await noop.defer_async(at=time.time())
        else:
            raise SystemExit(f"unknown verb {verb}")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
