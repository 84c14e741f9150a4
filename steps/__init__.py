"""The daily pass's steps on the registry, each one transaction: SQL narrows, the policy decides, letters are queued."""
