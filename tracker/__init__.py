"""The tracker: receives batches, validates them, assigns identifiers, links plans,
and hands resolved batches to the manager."""
