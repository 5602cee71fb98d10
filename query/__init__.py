"""The query side: a read-only SPARQL 1.1 Protocol endpoint and named lineage questions."""
