"""The operator: TrainingRun custom resources -> training Job (GPU, CPU fallback) -> gated evaluation -> promotion."""
