"""The adapter framework and kit: integrations/ (contract, registry, redaction, outbound HTTP), the
shipped adapters, testing/ (conformance), scaffold/, the partner simulator and the adapter guide."""
