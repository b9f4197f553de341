"""The serving stage: the BentoML service (``serving.service``), the model slot and hot swap,
request routing to the champion, canary and shadow, adaptive batching and the prediction log.
Reads the traffic plan of a rollout from the database; never imports the rollout stage."""
