"""The model router: tier rules, A/B arms, fallbacks, circuit breakers, RAG and the calculator."""
