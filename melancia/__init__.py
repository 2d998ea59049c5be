"""MelancIA: fine-tune, evaluate and serve a Portuguese Retail Media Ads assistant."""

__version__ = "0.1.0"
