"""The BentoML service, request routing, shadow mirroring and prediction logging (see the serving issue)."""
