"""Wire protocols MelancIA speaks on both sides of the gateway: the request and response types, nothing served.

The gateway (:mod:`melancia.api`) and the predictor (:mod:`melancia.serving`) both answer OpenAI chat
completions, and the gateway reads the predictor's stream back; the types live here so neither has
to import the other.
"""
