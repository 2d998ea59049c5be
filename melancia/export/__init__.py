"""Export: a fine-tuned model turned into files other engines serve (merged safetensors, GGUF, Modelfile).

* :mod:`~melancia.export.merge`: an adapter merged into an unquantised copy of its base;
* :mod:`~melancia.export.writer`: one GGUF file from a Hugging Face directory (:func:`export_gguf`), from
  :mod:`~melancia.export.hyperparameters`, :mod:`~melancia.export.vocabulary` and :mod:`~melancia.export.tensors`;
* :mod:`~melancia.export.modelfile`: the Ollama ``Modelfile`` that goes next to the GGUF.

Training exports at the end of a run; the providers export a registered adapter on first use.
"""
