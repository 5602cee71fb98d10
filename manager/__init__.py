"""The manager: resolved batches → RDF → the triple store, one atomic write per batch."""
