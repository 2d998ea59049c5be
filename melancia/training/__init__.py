"""Supervised fine-tuning: tokenisation with assistant-only labels, packing, and the training loop."""
