"""APScheduler 3.11 side of bench/src/bin/compare.rs's firing and footprint workloads.

  fire COUNT SLOT OUT   add COUNT cron jobs (in-memory job store, default thread pool
                        executor and job defaults) that all fire at SLOT (Unix
                        seconds, a whole minute, UTC) and call a no-op function; at
                        SLOT + 20 s write {"started", "missed", "lateness_ms"} as JSON to
                        OUT and exit. Until the slot the process is idle, which is when
                        its footprint is measured."""

import json
import sys
import threading
import time
from datetime import datetime, timezone

from apscheduler.events import EVENT_JOB_MISSED
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

lock = threading.Lock()
lateness_ms = []
missed = 0


def main(count, slot, out):
    global missed
    slot_time = datetime.fromtimestamp(slot, tz=timezone.utc)

    def noop():
        late = (time.time() - slot) * 1000
        with lock:
            lateness_ms.append(late)

    def on_missed(event):
        global missed
        with lock:
            missed += 1

    scheduler = BackgroundScheduler(timezone=timezone.utc)
    scheduler.add_listener(on_missed, EVENT_JOB_MISSED)
    trigger = CronTrigger(hour=slot_time.hour, minute=slot_time.minute, second=0, timezone=timezone.utc)
    for i in range(count):
        scheduler.add_job(noop, trigger, id=f"job{i}")
    scheduler.start()
    time.sleep(max(0.0, slot + 20 - time.time()))
    with lock:
        result = {"started": len(lateness_ms), "missed": missed, "lateness_ms": lateness_ms}
        with open(out, "w") as f:
            json.dump(result, f)
    scheduler.shutdown(wait=False)


if __name__ == "__main__":
    _, verb, count, slot, out = sys.argv
    assert verb == "fire"
    main(int(count), int(slot), out)
