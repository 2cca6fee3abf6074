"""Write N order inputs as JSON Lines (one input per line) on stdout.

python -m examples.distributed_queue.inputs 2000 > orders.jsonl
"""

from __future__ import annotations

import json
import sys


def main(count: int) -> None:
    for n in range(1, count + 1):
        print(json.dumps({"orderId": f"ORD-{n:06d}", "amount": (n * 37) % 1000}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
