"""Domain operations, one module per aggregate; each takes a `UnitOfWork` and enforces its rules."""
