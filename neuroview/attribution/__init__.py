"""Importance as data: global weights and shares (``importance``), tables and saved explanations
(``export``), and faithfulness checks against post-hoc methods (``faithfulness``). May import
``neuroview.core``; never ``training``, ``viz`` or Lightning.
"""
