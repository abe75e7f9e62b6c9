"""Pictures and reports: matplotlib figures (``plots``, gathering ``units``, ``temporal``,
``decision`` and ``faithfulness``) and the ``neuroview explain`` report (``report``). The top
layer under ``cli``: may import any other subpackage; matplotlib is imported only when drawing.
"""
