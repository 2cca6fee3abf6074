"""The task functions of the order-processing machine, as a ``statefleet.App``.

Every command that runs these executions names it: ``--app examples.order_processing.app:app``
(``statefleet run`` takes it as ``--resources``).

Failures are deterministic so the example shows every path: an order with a line of
quantity 0 is rejected (``InvalidOrder`` -> Catch -> Rejected), card ``0000`` is declined
(``CardDeclined`` -> Catch -> Declined), and the first attempt to charge card ``4000`` times
out (``PaymentGatewayTimeout`` -> Retry, then it succeeds).
"""

from __future__ import annotations

from typing import Any

from statefleet import App, TaskContext, TaskError

app = App()


@app.resource("orders:validate")
def validate(order: dict[str, Any]) -> dict[str, Any]:
    if not order.get("lines"):
        raise TaskError("InvalidOrder", f"order {order.get('orderId')} has no lines")
    for number, line in enumerate(order["lines"], 1):
        if line.get("quantity", 0) <= 0:
            raise TaskError("InvalidOrder", f"line {number}: quantity must be positive")
    return order


@app.resource("orders:price-line")
def price_line(line: dict[str, Any]) -> dict[str, Any]:
    return {**line, "amount": round(line["quantity"] * line["unitPrice"], 2)}


@app.resource("orders:charge")
def charge(order: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    """The context's execution id, state and attempt make an idempotency key for the
    payment provider: a retried charge is never taken twice."""
    if order["card"] == "0000":
        raise TaskError("CardDeclined", f"card of order {order['orderId']} declined")
    if order["card"] == "4000" and context.attempt == 0:
        raise TaskError("PaymentGatewayTimeout", "the payment gateway did not answer")
    total = round(sum(line["amount"] for line in order["lines"]), 2)
    key = f"{context.execution_id}:{context.state_name}"
    return {"charged": total, "idempotencyKey": key, "attempt": context.attempt}


@app.resource("orders:ship")
def ship(request: dict[str, Any]) -> dict[str, Any]:
    return {"carrier": request["carrier"], "tracking": f"TRK-{request['orderId']}"}
