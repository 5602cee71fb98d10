"""The terms the interop modules share: PROV's qualified relations, where an imported
document's copy is kept, and SHACL's prefix declarations."""

from __future__ import annotations

from provml.core.vocab import ID_BASE, PROV, Namespace

#: qualified property → (property of the qualified node naming the influencer, plain property)
QUALIFIED: dict[str, tuple[str, str]] = {
    "qualifiedUsage": ("entity", "used"),
    "qualifiedGeneration": ("activity", "wasGeneratedBy"),
    "qualifiedInvalidation": ("activity", "wasInvalidatedBy"),
    "qualifiedAssociation": ("agent", "wasAssociatedWith"),
    "qualifiedAttribution": ("agent", "wasAttributedTo"),
    "qualifiedDelegation": ("agent", "actedOnBehalfOf"),
    "qualifiedDerivation": ("entity", "wasDerivedFrom"),
    "qualifiedRevision": ("entity", "wasRevisionOf"),
    "qualifiedQuotation": ("entity", "wasQuotedFrom"),
    "qualifiedPrimarySource": ("entity", "hadPrimarySource"),
    "qualifiedCommunication": ("activity", "wasInformedBy"),
    "qualifiedStart": ("entity", "wasStartedBy"),
    "qualifiedEnd": ("entity", "wasEndedBy"),
    "qualifiedInfluence": ("influencer", "wasInfluencedBy"),
}
QUALIFIED_TERMS = {PROV[q]: (PROV[via], PROV[plain]) for q, (via, plain) in QUALIFIED.items()}


#: named graph of an imported document's copy: this, then the SHA-256 of its bytes
DOCUMENT_BASE = f"{ID_BASE}import/"
#: SHACL's prefix declarations (``sh:declare [sh:prefix "ex"; sh:namespace "…"]``), with
#: which import keeps the prefixes a document declared
SH_NS = "http://www.w3.org/ns/shacl#"
SH = Namespace(SH_NS)
