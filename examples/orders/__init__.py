"""The manual's "Adding an event type": an order type with a reply and a fire-and-forget audit type.

In a project of your own the three files go where the manual says: `models.py` is
`schemas/order.py`, the specs join `schemas/catalogue.py`, the handlers `handler/functions.py`.
"""
