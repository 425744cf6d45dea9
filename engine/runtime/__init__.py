"""The model runtime: what a model is and how it runs, with no IME logic.

* ``model_spec``: vocabularies (input tokens, characters), ``ModelConfig``, reading ``config.json`` (no torch);
* ``model``: the Transformer encoder-decoder and its emission head, nanoGPT-style, owning its loss;
* ``backend``: the one interface a runtime implements (``Backend``) and the per-token output cache;
* ``decoder``: the constrained beam search, written once over a backend's ``Steps``;
* ``torch_backend``, ``onnx_backend``: the two runtimes (PyTorch for training and GPUs, ONNX Runtime for
  typing on a CPU without torch);
* ``two_pass``: whole-line conversion (the head and the LM propose, the decoder ranks in one call), and
  ``word_proposals``, the word lattice's proposals for it;
* ``onnx_export``, ``onnx_manifest``: the graphs the ONNX backend runs and which weights they came from.
"""
