"""The REST API gateway: API keys, the query log, rate limits and the response cache."""
