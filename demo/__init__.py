"""The guided tour of the whole loop (``lifecycle-demo``): a client of the stack's CLI building
blocks and APIs. Nothing imports it."""
