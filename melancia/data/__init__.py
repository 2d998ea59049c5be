"""Dataset pipeline: build ChatML examples, validate, dedupe, split and describe them."""
