"""Base models and tokenizers: where they come from and how they are loaded."""
