"""One engine in its own process, for the fleet tests.

``python fleet_worker.py CONFIG MODEL RACES``: opens an engine on CONFIG, runs
RACES races of MODEL one after another, closes it (the last shared round
included) and prints one JSON line: ``{"started": {label: attempts started},
"failed": races that failed}``.
"""

import json
import sys
from collections import Counter

import trio

import raceway


async def main(config: str, model: str, races: int) -> None:
    started: Counter[str] = Counter()
    failed = 0
    async with raceway.open_engine(config) as engine:
        for _ in range(races):
            try:
                result = await engine.complete([{"role": "user", "content": "hi"}], model=model)
            except raceway.AllProvidersFailedError:
                failed += 1
                continue
            for a in result.attempts:
                if a.started_ms is not None:
                    started[f"{a.provider}/{a.model}"] += 1
    print(json.dumps({"started": started, "failed": failed}))


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
