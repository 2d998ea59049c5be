"""The retail-media calculator: exact metrics for the questions language models get wrong.

Language models get arithmetic wrong often enough to matter when a seller asks "gastei R$ 200 e
vendi R$ 1.000, qual meu ACOS?". The router answers those questions here, exactly:

* :mod:`~melancia.calculator.numbers`: Brazilian number formats, read and written;
* :mod:`~melancia.calculator.formulas` and :mod:`~melancia.calculator.metrics`: each metric's
  arithmetic and reading, and the registry with :func:`~melancia.calculator.metrics.compute`;
* :mod:`~melancia.calculator.lexicon` and :mod:`~melancia.calculator.detector`: recognising a
  calculation question in Portuguese (:func:`~melancia.calculator.detector.detect_calculation`).
"""
