// graphile-worker side of bench/src/bin/compare.rs. Verbs:
//   install                      run the migrations
//   enqueue COUNT                queue COUNT no-op jobs
//   work CONCURRENCY BATCH [OUT] run a worker (BATCH "on": localQueue.size 500 and
//                                completeJobBatchDelay/failJobBatchDelay 0, the
//                                documented high-throughput setting; "off": defaults);
//                                with OUT, each job appends its enqueue->start delay (ms)
//   produce RATE SECONDS         queue RATE jobs per second carrying their enqueue time
// The connection string is in DATABASE_URL.
const { run, makeWorkerUtils, runMigrations } = require("graphile-worker");
const fs = require("fs");

const connectionString = process.env.DATABASE_URL;

async function main() {
  const [verb, ...args] = process.argv.slice(2);
  if (verb === "install") {
    await runMigrations({ connectionString });
  } else if (verb === "enqueue") {
    const utils = await makeWorkerUtils({ connectionString });
    const count = Number(args[0]);
    for (let done = 0; done < count; done += 2000) {
      const n = Math.min(2000, count - done);
      await utils.addJobs(Array.from({ length: n }, () => ({ identifier: "noop", payload: {} })));
    }
    await utils.release();
  } else if (verb === "work") {
    const concurrency = Number(args[0]);
    const batched = args[1] === "on";
    const out = args[2] ? fs.openSync(args[2], "a") : null;
    const worker = {
      connectionString,
      concurrentJobs: concurrency,
      maxPoolSize: Math.max(10, concurrency + 2),
      pollInterval: 1000,
    };
    if (batched) {
      worker.localQueue = { size: 500 };
      worker.completeJobBatchDelay = 0;
      worker.failJobBatchDelay = 0;
    }
    const runner = await run({
      preset: { worker },
      noHandleSignals: false,
      taskList: {
        noop: async (payload) => {
          if (out !== null && payload.at) {
            fs.writeSync(out, `${Date.now() - payload.at}\n`);
          }
        },
      },
    });
    await runner.promise;
  } else if (verb === "produce") {
    const utils = await makeWorkerUtils({ connectionString });
    const rate = Number(args[0]);
    const total = rate * Number(args[1]);
    const start = Date.now();
    for (let i = 0; i < total; i++) {
      const wait = start + (i * 1000) / rate - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await utils.addJob("noop", { at: Date.now() });
    }
    await utils.release();
  } else {
    throw new Error(`unknown verb ${verb}`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
