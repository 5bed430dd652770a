"""Stripe: the gateway (``gateway``, the only code that calls Stripe's SDK), the shape of a signed event
(``events``) and the webhook handler that stores each event once and settles orders from it (``webhooks``)."""
