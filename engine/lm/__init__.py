"""The language models mixed into the model's searches (``engine.ime.converter`` passes them in):

* ``char_lm``: the corpus character n-gram (fused into every step of the searches);
* ``word_lm``: the corpus word n-gram (scores whole candidates);
* ``user_lm``: the user's n-gram cache over their committed text, kept up to date as they type.
"""
