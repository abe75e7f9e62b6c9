"""Training at the edge: the LightningModule and reading its checkpoints (``module``), its callbacks
(``callbacks``) and the ``neuroview fit|validate|test|predict`` command (``cli``), retrofitting a
trained network (``retrofit``) and the plain-PyTorch demo (``demo``). May import every layer below
it: ``core``, ``attribution``, ``data``, ``zoo`` and the leaf modules; never ``viz``.
"""
