"""The guided tour of the whole loop (`lifecycle demo`)."""
