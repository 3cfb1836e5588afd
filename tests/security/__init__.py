"""Security controls across domains: secrets at rest and in output, the authorization matrix, SSRF,
file modes, constant-time comparisons (docs/security.md maps each control to its test)."""
