"""Routing as the Knative Broker does it: CESQL, Trigger filters, and Triggers read from YAML.

Pure code below the rest of the runtime (it imports only `eventfn.core` and `eventfn.binding`,
and no I/O library): the catalogue validates filters with it at import time, the `route` and
`cesql` commands and the local test broker (`eventfn.testing`) evaluate them per event.
"""
