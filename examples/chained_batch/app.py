"""Task functions and the input transformer of the chained-batch example.

``--app examples.chained_batch.app:app`` on every command that runs these machines.
Every 50th parcel is undeliverable (intake fails it), so fulfilment runs on 98% of them.
"""

from __future__ import annotations

from typing import Any

from statefleet import App, TaskError

app = App()


@app.resource("parcels:check")
def check(parcel: dict[str, Any]) -> dict[str, Any]:
    if parcel["number"] % 50 == 0:
        raise TaskError("Undeliverable", f"no such address for {parcel['parcelId']}")
    return parcel


@app.resource("parcels:price")
def price(parcel: dict[str, Any]) -> float:
    return round(3.5 + 0.4 * parcel["kg"], 2)


@app.resource("parcels:book")
def book(request: dict[str, Any]) -> dict[str, Any]:
    return {"service": request["service"], "slot": f"SLOT-{request['parcelId'][-3:]}"}


@app.transformer("shipment")
def shipment(intake_output: dict[str, Any]) -> dict[str, Any]:
    """What fulfilment needs from an accepted intake: the parcel, its weight and price."""
    return {
        "parcelId": intake_output["parcelId"],
        "kg": intake_output["kg"],
        "paid": intake_output["price"],
    }


def parcels(size: int) -> list[dict[str, Any]]:
    """``size`` parcel requests, the same ones on every run."""
    return [
        {"parcelId": f"P-{n:06d}", "number": n, "kg": (n * 7) % 31 + 1} for n in range(1, size + 1)
    ]


if __name__ == "__main__":  # python -m examples.chained_batch.app 1000 > parcels.jsonl
    import json
    import sys

    for parcel in parcels(int(sys.argv[1]) if len(sys.argv) > 1 else 1000):
        print(json.dumps(parcel))
