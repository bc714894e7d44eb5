"""Repository functions agent code calls: async, the session first, one module per schema.

They execute statements but never commit: the caller decides the transaction, usually with
`async with manager.transaction() as session:`. Bad input raises ValueError (never reaches SQL);
a missing row reads as None (or False for deletes); a missing parent row raises LookupError.
"""
