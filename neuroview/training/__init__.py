"""Training at the edge: the LightningModule and CLI (``module``), retrofitting a trained network
(``retrofit``) and the plain-PyTorch demo (``demo``). May import every layer below it: ``core``,
``attribution``, ``data``, ``zoo``.
"""
